"""Every field Callbridge reads or writes, checked against what describe says the integration
user can see and set; every picklist value a mapping or a disposition rule writes.

``uses`` is the inventory: polling, matching (standard and ``SALESFORCE_PHONE_FIELDS`` phone
fields), the caller card, new callers' records, the call's Task (fixed fields and the Task
mapping), the other mappings, and the disposition rules' writes. Code that would use a field
describe does not show leaves it out (``salesforce.access``); this is where a manager learns so.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from integrations.errors import RemoteRejected
from integrations.health.lines import Line, setup_field
from integrations.salesforce import access, record_types
from integrations.salesforce.access import Need
from integrations.salesforce.client import SalesforceClient
from integrations.settings import Settings
from integrations.sync.automations import dispositions, mapping_store
from integrations.sync.automations.fieldmap import DEFAULT_MAPPINGS, parse_source
from integrations.sync.automations.task_fields import FIXED_TASK_FIELDS
from integrations.sync.callers.matching import CONTEXT_FIELDS, EXTRA_FIELDS, Policy
from integrations.sync.jobs.context import Context
from integrations.sync.salesforce_triggers.polling import FIELDS as POLLED

CARD_OPPORTUNITY = ("Name", "StageName", "CloseDate", "AccountId", "IsClosed")
EVENT_FIELDS = ("Subject", "Description", "StartDateTime", "EndDateTime", "WhoId", "OwnerId")
FOLLOW_UP_FIELDS = ("Subject", "Status", "ActivityDate", "WhoId", "OwnerId", "Description")
DNC_FIELDS = ("DoNotCall", "HasOptedOutOfEmail")
NO_ACCESS = {"NOT_FOUND", "INVALID_TYPE", "INSUFFICIENT_ACCESS"}  # describe of a hidden object
FRESH = 60.0  # seconds: the picklist check reuses the describes the field check just read


@dataclass(frozen=True)
class Use:
    sobject: str
    field: str  # an API name, or a parent path (``Account.Name``)
    need: Need
    why: str


def _many(sobject: str, fields: Any, need: Need, why: str) -> list[Use]:
    return [Use(sobject, str(f), need, why) for f in fields]


def uses(settings: Settings, engine: Engine) -> list[Use]:
    """Every (object, field) Callbridge reads or writes with these settings and this store."""
    found: list[Use] = []
    for sobject in ["Lead", "Contact", *settings.salesforce_poll_objects]:
        found += _many(sobject, POLLED.get(sobject, []), "read", "polling")
    policy = Policy.from_settings(settings)
    for sobject in policy.priority:
        found += _many(sobject, EXTRA_FIELDS.get(sobject, []), "read", "matching callers")
        found += _many(sobject, policy.phone_fields(sobject), "read", "matching callers")
        found += _many(sobject, CONTEXT_FIELDS.get(sobject, []), "read", "the caller card")
    found += _many("Opportunity", CARD_OPPORTUNITY, "read", "the caller card")
    if settings.create_unknown_callers != "none":
        sobject = "Lead" if settings.create_unknown_callers == "lead" else "Contact"
        new = ["LastName", "Phone", *(["Company", "LeadSource"] if sobject == "Lead" else [])]
        found += _many(sobject, new, "create", "records for new callers")
    found += _many("Task", FIXED_TASK_FIELDS, "create", "the call's Task")
    found += _many(
        "Task", [f for f in FIXED_TASK_FIELDS if f != "TaskSubtype"], "update", "the call's Task"
    )
    if settings.task_external_id_field:
        found.append(
            Use("Task", settings.task_external_id_field, "create", "TASK_EXTERNAL_ID_FIELD")
        )
    for sobject in DEFAULT_MAPPINGS:
        mapping = mapping_store.load_mapping(engine, sobject)
        why = "the call's Task (Task mapping)" if sobject == "Task" else f"the {sobject} mapping"
        found += _many(sobject, mapping, "create", why)
        if sobject == "Task":
            found += _many(sobject, mapping, "update", why)
    found += _disposition_uses(settings, engine)
    return found


def _disposition_uses(settings: Settings, engine: Engine) -> list[Use]:
    why = "disposition rules"
    found: list[Use] = []
    for rule in (r for r in dispositions.rules(engine) if r.enabled):
        if rule.lead_status:
            found.append(Use("Lead", "Status", "update", why))
        if rule.opportunity_stage:
            found.append(Use("Opportunity", "StageName", "update", why))
        if rule.contact_status and settings.disposition_contact_status_field:
            found.append(Use("Contact", settings.disposition_contact_status_field, "update", why))
        flag = (rule.options or {}).get("flag_field")
        people = ("Lead", "Contact")
        if rule.key == "booked":
            found += _many("Event", EVENT_FIELDS, "create", why)
        if rule.key in ("no_answer", "callback"):
            found += _many("Task", FOLLOW_UP_FIELDS, "create", why)
        for sobject in people:
            if rule.key == "dnc":
                found += _many(sobject, DNC_FIELDS, "update", why)
            if rule.key == "wrong_number":
                found.append(Use(sobject, "Description", "update", why))
            if flag:
                found.append(Use(sobject, str(flag), "update", why))
    return found


def _describes(sf: SalesforceClient, sobjects: set[str]) -> dict[str, dict | None]:
    """Each object's fields by lower-cased name; None when the user cannot describe it."""
    out: dict[str, dict | None] = {}
    for sobject in sorted(sobjects):
        try:
            # Afresh: a manager who just fixed a profile checks again (and the jobs' cache,
            # shared with this client, learns it too).
            described = access.describe(sf, sobject, max_age=0)
        except RemoteRejected as exc:
            if exc.status != 404 and exc.error_code not in NO_ACCESS:
                raise
            out[sobject] = None
            continue
        out[sobject] = mapping_store.fields_by_name(described)
    return out


def _fault(use: Use, fields: dict, describes: dict[str, dict | None]) -> tuple[str, str] | None:
    """(object.field as Setup names it, what is wrong) for one use, else None."""
    top, _, child = use.field.partition(".")
    if child:
        lookup = next(
            (
                f
                for f in fields.values()
                if (f.get("relationshipName") or "").lower() == top.lower()
            ),
            None,
        )
        if lookup is None:
            return f"{use.sobject}.{top}", "hidden"
        targets = lookup.get("referenceTo") or []
        parent = describes.get(targets[0]) if len(targets) == 1 else None
        if parent is not None and child.lower() not in parent:
            return f"{targets[0]}.{child}", "hidden"
        return None
    spec = fields.get(use.field.lower())
    if spec is None:
        return f"{use.sobject}.{use.field}", "hidden"
    if use.need == "create" and not spec.get("createable"):
        return f"{use.sobject}.{spec['name']}", "create"
    if use.need == "update" and not spec.get("updateable"):
        return f"{use.sobject}.{spec['name']}", "update"
    return None


def _parents(describes: dict[str, dict | None], found: list[Use]) -> set[str]:
    parents = set()
    for use in found:
        top, _, child = use.field.partition(".")
        fields = describes.get(use.sobject)
        if not child or not fields:
            continue
        for f in fields.values():
            targets = f.get("referenceTo") or []
            if (f.get("relationshipName") or "").lower() == top.lower() and len(targets) == 1:
                parents.add(targets[0])
    return parents - set(describes)


def _field_lines(sf: SalesforceClient, found: list[Use]) -> list[Line]:
    describes = _describes(sf, {u.sobject for u in found})
    describes.update(_describes(sf, _parents(describes, found)))
    faults: dict[tuple[str, str], set[str]] = defaultdict(set)
    lines = []
    for sobject, fields in describes.items():
        if fields is None:
            lines.append(
                Line(
                    f"{sobject} object",
                    f"the integration user cannot read {sobject} records: give its profile or "
                    f"a permission set Read, Create and Edit on {sobject} (Setup → Users → "
                    "Profiles → Object Settings)",
                )
            )
    for use in found:
        fields = describes.get(use.sobject)
        fault = _fault(use, fields, describes) if fields is not None else None
        if fault is not None:
            faults[fault].add(use.why)
    for (name, kind), whys in sorted(faults.items()):
        sobject, _, field = name.partition(".")
        where = setup_field(sobject, field)
        used = ", ".join(sorted(whys))
        if kind == "hidden":
            problem = (
                f"the integration user cannot see this field, so Callbridge leaves it out of "
                f"{used}: {where}, and tick Visible for the integration user's profile (if the "
                "org has no such field, remove it from the setting or mapping that names it)"
            )
        else:
            verb = "set it on new records" if kind == "create" else "change it"
            problem = (
                f"the integration user can read this field but not {verb}, so Callbridge "
                f"leaves it out of {used}: {where}, and untick Read-Only for the integration "
                "user's profile"
            )
        lines.append(Line(name, problem))
    if not lines:
        count = len({(u.sobject, u.field) for u in found})
        lines.append(
            Line(f"Field access: the {count} fields Callbridge uses are visible and settable")
        )
    return lines


async def field_access(ctx: Context) -> list[Line]:
    found = await asyncio.to_thread(uses, ctx.settings, ctx.engine)
    return await asyncio.to_thread(_field_lines, ctx.salesforce, found)


def _mapping_values(sf: SalesforceClient, engine: Engine) -> list[Line]:
    lines = []
    for sobject in DEFAULT_MAPPINGS:
        mapping = mapping_store.load_mapping(engine, sobject)
        try:
            described = mapping_store.picklist_describe(sf, sobject, max_age=FRESH)
            fields = mapping_store.fields_by_name(described)
        except (RemoteRejected, record_types.RecordTypeMissing):
            continue  # the field check (or the record type check) says so
        for target, source in mapping.items():
            spec = fields.get(str(target).lower())
            if spec is None or spec.get("type") not in ("picklist", "multipicklist"):
                continue
            allowed = mapping_store.picklist_values(spec)
            try:
                literals = [s.literal for s in parse_source(source) if s.is_literal]
            except ValueError:
                continue
            for value in (str(v) for v in literals if v is not None):
                if value not in allowed:
                    label = spec.get("label") or spec["name"]
                    lines.append(
                        Line(
                            f"{sobject} mapping: {spec['name']} = {value!r}",
                            f"{value!r} is not an active value of {sobject} {label}: add it in "
                            f"Setup → Object Manager → {sobject} → Fields & Relationships → "
                            f"{label} → Values, or change the {sobject} mapping (allowed: "
                            f"{', '.join(allowed)})",
                        )
                    )
    return lines


def _picklist_lines(sf: SalesforceClient, engine: Engine, settings: Settings) -> list[Line]:
    lines = _mapping_values(sf, engine)
    for problem in dispositions.check_targets(sf, engine, settings):
        lines.append(
            Line(
                "Disposition rule value",
                f"{problem}: add the value in Setup → Object Manager → (the object) → Fields & "
                "Relationships → (the field) → Values, or change the rule on the Dispositions page",
            )
        )
    return lines or [Line("Picklist values the mappings and disposition rules set all exist")]


async def picklists(ctx: Context) -> list[Line]:
    return await asyncio.to_thread(_picklist_lines, ctx.salesforce, ctx.engine, ctx.settings)
