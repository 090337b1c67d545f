"""The field mappings as stored per object, checked against the org's describe when saved.

``validate_mapping``: each field exists and is createable, a fixed picklist value is allowed, a
computed value goes into a restricted picklist only when every value it can take is allowed,
the object's required fields are mapped. Other values that come from call data can only be
checked by Salesforce: a rejection parks the job with Salesforce's message, and a corrected
mapping plus ``queue.resync`` fixes it. Mappings are read from the store at most every
``MAPPING_TTL`` seconds per process (a save in this process is seen at once).
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.errors import BadInput, RemoteRejected
from integrations.salesforce import record_types
from integrations.salesforce.access import DESCRIBE_TTL, describe
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.soql import api_name
from integrations.store.automation_models import FieldMapping
from integrations.sync.automations.fieldmap import DEFAULT_MAPPINGS, Source, parse_source
from integrations.sync.automations.task_fields import FIXED_TASK_FIELDS

MAPPING_TTL = 2.0  # seconds before another process's saved mapping reaches this one's jobs


def fields_by_name(described: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Describe's fields, by lower-cased name (API names are case-insensitive)."""
    return {f["name"].lower(): f for f in described.get("fields", [])}


def picklist_describe(
    sf: SalesforceClient, sobject: str, *, max_age: float = DESCRIBE_TTL
) -> dict[str, Any]:
    """The describe whose picklist values are those Callbridge may set: the configured record
    type's (``LEAD_RECORD_TYPE``...), else every value of the field."""
    return record_types.narrowed(sf, sobject, describe(sf, sobject, max_age=max_age))


def picklist_values(field_describe: dict[str, Any]) -> list[str]:
    return [v["value"] for v in field_describe.get("picklistValues") or [] if v.get("active")]


@dataclass(frozen=True)
class Problem:
    """Something wrong with one target field of a mapping, said so a manager can fix it."""

    sobject: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.sobject}.{self.field}: {self.message}"


# The values a computed source can take, where they are known; any other source can give anything.
KNOWN_VALUES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("call_direction",): ("Inbound", "Outbound"),
    ("call", "direction"): ("inbound", "outbound"),
}


def _source_text(source: Source) -> str:
    if source.template is not None:
        return source.template
    return "|".join([".".join(source.path), *source.transforms])


def _check_computed(spec: dict[str, Any], source: Source) -> str | None:
    """Why a computed value may be refused by a restricted picklist (None: it always fits)."""
    if spec.get("type") not in ("picklist", "multipicklist") or not spec.get("restrictedPicklist"):
        return None
    allowed = picklist_values(spec)
    known = KNOWN_VALUES.get(source.path) if not source.transforms else None
    text = _source_text(source)
    if known is not None:
        outside = [v for v in known if v not in allowed]
        if not outside:
            return None
        verb = "is" if len(outside) == 1 else "are"
        said = f"{text} gives {', '.join(known)}, and {', '.join(outside)} {verb} not in the list"
    else:
        said = f"{text} is computed from each call and may give any value"
    return (
        f"a restricted picklist: Salesforce refuses every value but {', '.join(allowed)}, and "
        f"{said}. Map a fixed value (={allowed[0] if allowed else '…'}) or a source that only "
        "gives values of the list."
    )


def _check_literal(sobject: str, target: str, spec: dict[str, Any], value: Any) -> Problem | None:
    kind = spec.get("type")
    if kind in ("picklist", "multipicklist") and spec.get("restrictedPicklist"):
        allowed = picklist_values(spec)
        values = str(value).split(";") if kind == "multipicklist" else [str(value)]
        bad = [v for v in values if v not in allowed]
        if bad:
            return Problem(
                sobject,
                target,
                f"{bad[0]!r} is not a value of this picklist (allowed: {', '.join(allowed)})",
            )
    if kind == "boolean" and not isinstance(value, bool):
        return Problem(sobject, target, "a checkbox takes true or false")
    if kind in ("int", "double", "currency", "percent") and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        return Problem(sobject, target, "a number field takes a number")
    length = spec.get("length") or 0
    if isinstance(value, str) and length and len(value) > length:
        return Problem(sobject, target, f"longer than the field's {length} characters")
    return None


def validate_mapping(
    sf: SalesforceClient, sobject: str, mapping: dict[str, Any], *, creating: bool = True
) -> list[Problem]:
    """What is wrong with ``mapping`` for ``sobject`` in this org (empty: nothing found)."""
    try:
        api_name(sobject)
    except ValueError as exc:
        return [Problem(sobject, "", str(exc))]
    try:
        fields = fields_by_name(picklist_describe(sf, sobject))
    except RemoteRejected as exc:
        return [Problem(sobject, "", f"Salesforce has no such object ({exc.error_code})")]
    except record_types.RecordTypeMissing as exc:
        return [Problem(sobject, "", str(exc))]
    problems = []
    fixed = {f.lower() for f in FIXED_TASK_FIELDS} if sobject.lower() == "task" else set()
    for target, source in mapping.items():
        if str(target).lower() in fixed:
            problems.append(
                Problem(sobject, target, "set by Callbridge on the call's Task, not by the mapping")
            )
            continue
        spec = fields.get(str(target).lower())
        if spec is None:
            problems.append(Problem(sobject, target, "no such field in this org"))
            continue
        if creating and not spec.get("createable"):
            problems.append(Problem(sobject, target, "Salesforce does not let this field be set"))
        elif not creating and not spec.get("updateable"):
            problems.append(Problem(sobject, target, "Salesforce does not let this field change"))
        try:
            sources = parse_source(source)
        except ValueError as exc:
            problems.append(Problem(sobject, target, str(exc)))
            continue
        for literal in (s.literal for s in sources if s.is_literal and s.literal is not None):
            problem = _check_literal(sobject, spec["name"], spec, literal)
            if problem is not None:
                problems.append(problem)
        for computed in (s for s in sources if not s.is_literal):
            message = _check_computed(spec, computed)
            if message is not None:
                problems.append(Problem(sobject, spec["name"], message))
                break
    if creating:
        mapped = {str(t).lower() for t in mapping}
        for spec in fields.values():
            required = (
                spec.get("createable")
                and not spec.get("nillable")
                and not spec.get("defaultedOnCreate")
            )
            if required and spec["name"].lower() not in mapped:
                problems.append(Problem(sobject, spec["name"], "required, and not mapped"))
    return problems


_mappings: weakref.WeakKeyDictionary[Engine, dict[str, tuple[float, dict[str, Any]]]]


_mappings = weakref.WeakKeyDictionary()


_mapping_lock = threading.Lock()


def load_mapping(engine: Engine, sobject: str, *, max_age: float = MAPPING_TTL) -> dict[str, Any]:
    """The manager's mapping for ``sobject``, else the shipped default (else none).

    Every call's Task reads the Task mapping: it is read from the store at most every
    ``max_age`` seconds per process.
    """
    now = time.monotonic()
    with _mapping_lock:
        hit = _mappings.get(engine, {}).get(sobject)
    if hit is None or now - hit[0] > max_age:
        with Session(engine) as s:
            row = s.get(FieldMapping, sobject)
        mapping = dict(row.mapping) if row is not None else DEFAULT_MAPPINGS.get(sobject, {})
        hit = (now, dict(mapping))
        with _mapping_lock:
            _mappings.setdefault(engine, {})[sobject] = hit
    return dict(hit[1])


RESTRICTED = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def mapping_rows(
    engine: Engine,
    sobject: str,
    step_fields: dict[str, Any] | None = None,
    use_mapping: bool = True,
) -> dict[str, str]:
    """Where each field's value comes from, in the words of the screens that set it."""
    mapping = load_mapping(engine, sobject) if use_mapping else {}
    rows = {t: f"{sobject} field mapping, row {t} = {source}" for t, source in mapping.items()}
    rows.update(
        {t: f"this action's field {t} = {source}" for t, source in (step_fields or {}).items()}
    )
    return rows


def name_rows(exc: RemoteRejected, rows: dict[str, str]) -> RemoteRejected:
    """Salesforce's refusal of a picklist value with the mapping row that gave it added to each
    error (``mapping_row``, beside Salesforce's own words): the row to fix, not only the field."""
    by_name = {name.lower(): row for name, row in rows.items()}
    if exc.error_code != RESTRICTED or not isinstance(exc.body, list):
        return exc
    named, found = [], False
    for error in exc.body:
        fields = error.get("fields") if isinstance(error, dict) else None
        behind = [by_name[f.lower()] for f in fields or [] if str(f).lower() in by_name]
        if behind:
            error, found = {**error, "mapping_row": "; ".join(behind)}, True
        named.append(error)
    return RemoteRejected(exc.service, exc.status, named) if found else exc


def save_mapping(
    engine: Engine, sf: SalesforceClient, sobject: str, mapping: dict[str, Any], by: str
) -> None:
    """Check ``mapping`` against the org, then keep it; ``BadInput`` lists every problem."""
    problems = validate_mapping(sf, sobject, mapping)
    if problems:
        raise BadInput("; ".join(str(p) for p in problems))
    with Session(engine) as s:
        s.merge(
            FieldMapping(sobject=sobject, mapping=mapping, updated_by=by, updated_at=time.time())
        )
        s.commit()
    forget_cached(engine, sobject)  # this process uses it at once


def forget_cached(engine: Engine, sobject: str) -> None:
    """The next read of ``sobject``'s mapping in this process goes to the store."""
    with _mapping_lock:
        _mappings.get(engine, {}).pop(sobject, None)
