"""The field mappings as stored per object, checked against the org's describe when saved.

``validate_mapping``: each field exists and is createable, a fixed picklist value is allowed, the
object's required fields are mapped. Values that come from call data can only be checked by
Salesforce: a rejection parks the job with Salesforce's message, and a corrected mapping plus
``queue.resync`` fixes it. Mappings are read from the store at most every ``MAPPING_TTL``
seconds per process (a save in this process is seen at once).
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
from integrations.salesforce.access import describe
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.soql import api_name
from integrations.store.automation_models import FieldMapping
from integrations.sync.automations.fieldmap import DEFAULT_MAPPINGS, parse_source
from integrations.sync.automations.task_fields import FIXED_TASK_FIELDS

MAPPING_TTL = 2.0  # seconds before another process's saved mapping reaches this one's jobs


def fields_by_name(described: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Describe's fields, by lower-cased name (API names are case-insensitive)."""
    return {f["name"].lower(): f for f in described.get("fields", [])}


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
        fields = fields_by_name(describe(sf, sobject))
    except RemoteRejected as exc:
        return [Problem(sobject, "", f"Salesforce has no such object ({exc.error_code})")]
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
    with _mapping_lock:
        _mappings.get(engine, {}).pop(sobject, None)  # this process uses it at once
