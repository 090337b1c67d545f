"""Field values on the wire: checking JSON input per field type, and date/time formats.

Records are stored in their REST JSON form (datetimes as ``2024-03-01T10:15:30.000+0000``, dates
as ``2024-03-01``), so what is stored is what is served.
"""

from __future__ import annotations

import datetime as dt
import re

from .errors import bad_request, json_type_error
from .schema import ID_TYPES, NUMBER_TYPES, TEXT_TYPES, FieldDef

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})"
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_EMAIL = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+")


def format_datetime(value: dt.datetime) -> str:
    """REST form: UTC, milliseconds, offset without a colon."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def now_utc() -> dt.datetime:
    """The current time, truncated to whole seconds as Salesforce's system stamps are."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def parse_datetime(text: str) -> dt.datetime | None:
    """Parse an ISO 8601 datetime with an explicit offset (``Z``, ``+hh:mm`` or ``+hhmm``)."""
    match = _DATETIME.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        tz = dt.UTC
        if offset != "Z":
            sign = 1 if offset[0] == "+" else -1
            digits = offset[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:])
            if hours > 18 or minutes > 59:
                return None
            tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        value = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
        )
    except ValueError:
        return None
    return value.astimezone(dt.UTC)


def parse_date(text: str) -> dt.date | None:
    match = _DATE.fullmatch(text)
    if not match:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def coerce(field: FieldDef, value: object) -> object:
    """Check one JSON input value against the field's type; return the value to store.

    Wrong JSON types and unparseable dates are ``JSON_PARSER_ERROR`` as in Salesforce's REST
    parser. Empty strings become null: Salesforce never stores an empty text value.
    """
    if value is None:
        return None
    kind = field.type
    if kind in TEXT_TYPES or kind in ID_TYPES:
        if not isinstance(value, str):
            raise json_type_error("string", value)
        return value or None
    if kind == "boolean":
        if not isinstance(value, bool):
            raise json_type_error("boolean", value)
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise json_type_error("int", value)
        return value
    if kind in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise json_type_error("double", value)
        return float(value)
    if kind == "date":
        if not isinstance(value, str):
            raise json_type_error("date", value)
        if value == "":
            return None
        parsed = parse_date(value)
        if parsed is None:
            raise json_type_error("date", value)
        return parsed.isoformat()
    if kind == "datetime":
        if not isinstance(value, str):
            raise json_type_error("datetime", value)
        if value == "":
            return None
        moment = parse_datetime(value)
        if moment is None:
            raise json_type_error("datetime", value)
        return format_datetime(moment)
    raise json_type_error(kind, value)


def check_value(field: FieldDef, value: object) -> None:
    """Field-level rules after type coercion: length, email format, restricted picklists."""
    if value is None:
        return
    if field.type in TEXT_TYPES and isinstance(value, str):
        if field.length and len(value) > field.length:
            raise bad_request(
                "STRING_TOO_LONG",
                f"{field.label}: data value too large: {value} (max length={field.length})",
                [field.name],
            )
        if field.type == "email" and not _EMAIL.fullmatch(value):
            raise bad_request(
                "INVALID_EMAIL_ADDRESS",
                f"{field.label}: invalid email address: {value}",
                [field.name],
            )
        if field.restricted and field.picklist:
            chosen = value.split(";") if field.type == "multipicklist" else [value]
            for item in chosen:
                if item not in field.picklist:
                    raise bad_request(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{field.label}: bad value for restricted picklist field: {item}",
                        [field.name],
                    )
    if field.type in NUMBER_TYPES and field.precision:
        limit = 10 ** (field.precision - field.scale)
        if abs(value) >= limit:  # type: ignore[arg-type]
            raise bad_request(
                "NUMBER_OUTSIDE_VALID_RANGE",
                f"{field.label}: value outside of valid range on numeric field: {value}",
                [field.name],
            )
