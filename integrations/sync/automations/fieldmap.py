"""The field mapping: which call (or contact) value goes into which Salesforce field, per object.

A mapping is ``{"<Salesforce field>": <source>}``. A source that is not a string (a number, a
boolean, null) is written as is. A string source is one or more alternatives separated by
``||``; the first that gives a value (not null, not empty) wins:

- ``contact_phone``: a dialer field (``DIALER_FIELDS``), optionally transformed with ``|``:
  ``contact_name|first``, ``timestamp|date``, ``timestamp|date+30``; ``call_subject`` and
  ``call_description`` are the call's Task texts (``automations.task_fields``): "Inbound call
  from Jane Doe" (the matched Salesforce record's name on the call's own Task, elsewhere the
  Aircall contact's name or the number) and agent, line, tags, comments, recording, AI summary;
  ``call_link`` is the call's page in the Aircall Dashboard (``AIRCALL_CALL_URL``);
- ``call.duration``, ``call.user.email``, ``call.tags.0.name``: an Aircall call field
  (``AIRCALL_CALL_FIELDS``) and a path into it; ``contact.company_name`` (the caller's Aircall
  contact, or the contact of ``contact.created``); ``event.<path>`` (the webhook's data);
  ``steps.<n>.<path>`` (the result of an earlier step of an automation);
- ``=Phone Inquiry``: the text after ``=``, as is;
- ``Call {{call.id}} with {{contact_name}}``: a template; each ``{{...}}`` is a source as above.
  A template that is one placeholder alone keeps the value's type (a number stays a number).

Transforms: ``first``/``last`` (a name split on its last space), ``date`` (UNIX seconds or an ISO
time as the org's ``YYYY-MM-DD``), ``date+N`` (N days later), ``datetime`` (Salesforce's UTC
form), ``e164``, ``join`` (a list as text: tag names, comment contents), ``text``.

The Task mapping also makes the call's own Task (``integrations.sync.calls.calllog``), whose
``CallObject``, ``TaskSubtype``, ``Status``, ``WhoId`` and ``WhatId`` Callbridge sets itself
(``task_fields.FIXED_TASK_FIELDS``): the Task mapping cannot name them. Stored mappings, and
their check against the org's describe, are ``mapping_store``'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from integrations.aircall.links import call_page
from integrations.phones import to_e164
from integrations.sync.automations.task_fields import description, subject

DIALER_FIELDS = (
    "contact_phone",
    "contact_name",
    "contact_email",
    "call_direction",
    "call_duration",
    "disposition",
    "notes",
    "recording_url",
    "agent_name",
    "timestamp",
    "voicemail_url",
    "campaign_name",
    "ai_summary",
    "call_subject",
    "call_description",
    "call_link",
)
# Resolved only when a mapping uses it (one cached lookup): the agent's Salesforce User.
AGENT_OWNER = "agent_owner_id"
AIRCALL_CALL_FIELDS = (
    "id",
    "direct_link",
    "direction",
    "status",
    "missed_call_reason",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "recording",
    "voicemail",
    "comments",
    "tags",
    "number",
    "contact",
    "user",
    "raw_digits",
    "asset",
)
ROOTS = ("call", "contact", "event", "record", "steps")
# Sources that need the recording or voicemail link, which a call's snapshot may predate.
MEDIA_SOURCES = (
    "recording_url",
    "voicemail_url",
    "call_description",
    "call.recording",
    "call.voicemail",
    "call.asset",
)
TRANSFORMS = ("first", "last", "date", "datetime", "e164", "join", "text")

_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
_DATE_PLUS = re.compile(r"date\+(\d{1,4})")
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")

UNKNOWN_COMPANY = "=Unknown (Aircall)"
_LAST_NAME = "contact_name|last || Caller {{contact_phone}} || =Unknown caller"
DEFAULT_MAPPINGS: dict[str, dict[str, Any]] = {
    "Contact": {
        "FirstName": "contact_name|first",
        "LastName": _LAST_NAME,
        "Phone": "contact_phone",
        "Email": "contact_email",
        "LeadSource": "=Phone Inquiry",
        "OwnerId": AGENT_OWNER,
    },
    "Lead": {
        "FirstName": "contact_name|first",
        "LastName": _LAST_NAME,
        "Company": f"contact.company_name || {UNKNOWN_COMPANY}",
        "Phone": "contact_phone",
        "Email": "contact_email",
        "LeadSource": "=Phone Inquiry",
        "OwnerId": AGENT_OWNER,
    },
    "Opportunity": {
        "Name": "Aircall call {{call.id}} {{contact_name}}",
        "StageName": "=Prospecting",
        "CloseDate": "timestamp|date+30",
        "LeadSource": "=Phone Inquiry",
        "OwnerId": AGENT_OWNER,
    },
    "Task": {  # the call's own Task as it always was; CallObject, Status, WhoId... are fixed
        "Subject": "call_subject",
        "Type": "=Call",
        "CallType": "call_direction",
        "CallDurationInSeconds": "call_duration",
        "CallDisposition": "call.tags|join",
        "ActivityDate": "timestamp|date",
        "Description": "call_description",
        "OwnerId": AGENT_OWNER,
    },
    "Event": {
        "Subject": "=Meeting",
        "Description": "notes",
        "OwnerId": AGENT_OWNER,
    },
}


class Pending:
    """The result of a step that has not run (a dry run shows where it would go)."""

    def __init__(self, step: int) -> None:
        self.step = step


@dataclass
class Scope:
    """Everything a source can read: dialer fields, the call, the contact, the event, steps."""

    dialer: dict[str, Any] = field(default_factory=dict)
    call: dict[str, Any] = field(default_factory=dict)
    contact: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, Any] = field(default_factory=dict)
    zone: str = "UTC"


# -- dialer fields ------------------------------------------------------------------------------


def _names(items: object, key: str) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i[key]) for i in items if isinstance(i, dict) and i.get(key)]


def dialer_values(
    call: dict[str, Any],
    *,
    contact: dict[str, Any] | None = None,
    ai_summary: str | None = None,
    disposition: str | None = None,
    region: str = "US",
    caller: str | None = None,
    call_url: str = "",
) -> dict[str, Any]:
    """The brief's dialer fields for a call (or, with ``call={}``, for an Aircall contact).

    ``campaign_name`` is the Aircall line's name: Aircall's call payload names no campaign.
    ``caller`` is the name of the Salesforce record the call is logged against, when known;
    ``call_url`` is ``AIRCALL_CALL_URL`` (``call_link``: the call's page in the Dashboard).
    """
    contact = contact if contact is not None else (call.get("contact") or {})
    phones = [to_e164(v, region) for v in _names(contact.get("phone_numbers"), "value")]
    emails = _names(contact.get("emails"), "value")
    name = " ".join(
        str(part) for part in (contact.get("first_name"), contact.get("last_name")) if part
    )
    user = call.get("user") or {}
    direction = call.get("direction")
    tags = _names(call.get("tags"), "name")
    is_call = call.get("id") is not None and direction in ("inbound", "outbound")
    link = call_page(call_url, call.get("id")) if is_call else None
    return {
        "contact_phone": to_e164(call.get("raw_digits"), region)
        or next(filter(None, phones), None),
        "contact_name": name or None,
        "contact_email": emails[0] if emails else None,
        "call_direction": direction.capitalize() if isinstance(direction, str) else None,
        "call_duration": call.get("duration"),
        "disposition": disposition or (tags[0] if tags else None),
        "notes": "\n".join(_names(call.get("comments"), "content")) or None,
        "recording_url": (call.get("asset") or call.get("recording"))
        if call.get("recording") and not call.get("voicemail")
        else None,
        "agent_name": user.get("name"),
        "timestamp": call.get("started_at") or contact.get("created_at"),
        "voicemail_url": call.get("voicemail"),
        "campaign_name": (call.get("number") or {}).get("name"),
        "ai_summary": ai_summary,
        "call_subject": subject(call, caller, region) if is_call else None,
        "call_description": description(call, ai_summary, link) if is_call else None,
        "call_link": link,
    }


# -- sources ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One parsed alternative: a literal, a template, or a path with transforms."""

    literal: Any = None
    template: str | None = None
    path: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ()

    @property
    def is_literal(self) -> bool:
        return self.template is None and not self.path


def parse_path(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``call.user.email|text`` -> (path, transforms), or ValueError naming what is wrong."""
    head, *transforms = [part.strip() for part in text.split("|")]
    for transform in transforms:
        if transform not in TRANSFORMS and not _DATE_PLUS.fullmatch(transform):
            raise ValueError(f"unknown transform {transform!r} (known: {', '.join(TRANSFORMS)})")
    segments = tuple(head.split("."))
    if not all(_SEGMENT.fullmatch(s) for s in segments):
        raise ValueError(f"not a field path: {head!r}")
    first = segments[0]
    if len(segments) == 1:
        if first not in DIALER_FIELDS and first != AGENT_OWNER:
            raise ValueError(f"unknown dialer field {first!r}")
    elif first not in ROOTS:
        raise ValueError(f"a path starts with one of {', '.join(ROOTS)}: {head!r}")
    elif first == "call" and segments[1] not in AIRCALL_CALL_FIELDS:
        raise ValueError(f"unknown Aircall call field {segments[1]!r}")
    elif first == "steps" and not segments[1].isdigit():
        raise ValueError(f"steps are numbered from 1: {head!r}")
    return segments, tuple(transforms)


def parse_source(value: Any) -> list[Source]:
    """The alternatives of a mapping value (ValueError when one does not parse)."""
    if not isinstance(value, str):
        return [Source(literal=value)]
    sources = []
    for alternative in (part.strip() for part in value.split("||")):
        if alternative.startswith("="):
            sources.append(Source(literal=alternative[1:]))
        elif "{{" in alternative:
            for inner in _PLACEHOLDER.findall(alternative):
                parse_path(inner.strip())
            if "{{" in _PLACEHOLDER.sub("", alternative) or "}}" in _PLACEHOLDER.sub(
                "", alternative
            ):
                raise ValueError(f"unbalanced {{{{ }}}} in {alternative!r}")
            sources.append(Source(template=alternative))
        elif alternative:
            path, transforms = parse_path(alternative)
            sources.append(Source(path=path, transforms=transforms))
        else:
            raise ValueError("empty alternative")
    return sources


def referenced(value: Any) -> set[str]:
    """Names of the dialer fields and roots a source reads (to resolve lazy ones)."""
    names: set[str] = set()
    for source in parse_source(value):
        if source.path:
            names.add(source.path[0])
        elif source.template:
            names.update(
                parse_path(inner.strip())[0][0] for inner in _PLACEHOLDER.findall(source.template)
            )
    return names


def reads(mapping: dict[str, Any], names: tuple[str, ...]) -> bool:
    """Whether a source of ``mapping`` reads one of ``names`` (a dialer field or a path, such
    as ``call.recording``, which also covers ``call.recording.x``)."""
    paths: set[str] = set()
    for value in mapping.values():
        for source in parse_source(value):
            if source.path:
                paths.add(".".join(source.path))
            elif source.template:
                paths.update(
                    ".".join(parse_path(inner.strip())[0])
                    for inner in _PLACEHOLDER.findall(source.template)
                )
    return any(p == n or p.startswith(f"{n}.") for p in paths for n in names)


def _walk(value: Any, segments: tuple[str, ...]) -> Any:
    for segment in segments:
        if isinstance(value, Pending):
            return value
        if isinstance(value, dict):
            value = value.get(segment)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None
    return value


def _lookup(path: tuple[str, ...], scope: Scope) -> Any:
    if len(path) == 1:
        return scope.dialer.get(path[0])
    root = {"call": scope.call, "contact": scope.contact, "event": scope.event}.get(path[0])
    if path[0] == "steps":
        return _walk(scope.steps, path[1:])
    if path[0] == "record":  # a Salesforce trigger's record: the event's, by a shorter name
        return _walk(scope.event.get("record"), path[1:])
    return _walk(root, path[1:])


def as_datetime(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def salesforce_datetime(moment: datetime) -> str:
    """Salesforce's datetime form, in UTC: ``2026-03-10T17:00:00.000+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _transform(value: Any, name: str, zone: str) -> Any:
    if value is None or isinstance(value, Pending):
        return value
    if name in ("first", "last"):
        first, _, last = str(value).strip().rpartition(" ")
        return (first or None) if name == "first" else (last or None)
    if name == "e164":
        return to_e164(str(value))
    if name == "join":
        if isinstance(value, list):
            parts = [
                str(i.get("name") or i.get("content") or "") if isinstance(i, dict) else str(i)
                for i in value
            ]
            return ", ".join(p for p in parts if p) or None
        return str(value)
    if name == "text":
        return str(value)
    moment = as_datetime(value)
    if moment is None:
        return None
    if name == "datetime":
        return salesforce_datetime(moment)
    day: date = moment.astimezone(ZoneInfo(zone)).date()
    plus = _DATE_PLUS.fullmatch(name)
    if plus:
        day += timedelta(days=int(plus[1]))
    return day.isoformat()


def _path_value(path: tuple[str, ...], transforms: tuple[str, ...], scope: Scope) -> Any:
    value = _lookup(path, scope)
    for transform in transforms:
        value = _transform(value, transform, scope.zone)
    if isinstance(value, Pending):
        return f"<{'.'.join(path)}>"
    return value


def _render(template: str, scope: Scope) -> Any:
    whole = _PLACEHOLDER.fullmatch(template.strip())
    if whole:
        return _path_value(*parse_path(whole[1].strip()), scope)

    def one(match: re.Match[str]) -> str:
        value = _path_value(*parse_path(match[1].strip()), scope)
        return "" if value is None else str(value)

    return " ".join(_PLACEHOLDER.sub(one, template).split()) or None


def evaluate(value: Any, scope: Scope) -> Any:
    """The value a source gives in ``scope`` (None when every alternative is empty)."""
    for source in parse_source(value):
        if source.is_literal:
            result = source.literal
        elif source.template is not None:
            result = _render(source.template, scope)
        else:
            result = _path_value(source.path, source.transforms, scope)
        if result is not None and result != "":
            return result
    return None


def apply_mapping(mapping: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """The fields a mapping gives; fields without a value are left out (Salesforce defaults)."""
    fields = {}
    for target, source in mapping.items():
        value = evaluate(source, scope)
        if value is not None:
            fields[target] = value
    return fields


# -- describe and validation ----------------------------------------------------------------------


# -- storage ------------------------------------------------------------------------------------
