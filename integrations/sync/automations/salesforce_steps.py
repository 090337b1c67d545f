"""The Salesforce steps: create, update, query (A19), the call's Task, status and stage, Event,
flag phone, Do Not Call, match or create.

Writes are noted before or as they are made (``note_write``) so polling does not report an
automation's own change as a trigger.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.aircall import actions as aircall_actions
from integrations.errors import BadInput, RemoteRejected
from integrations.salesforce import person_accounts
from integrations.salesforce.soql import api_name
from integrations.store.models import Job
from integrations.store.salesforce_sync import note_write
from integrations.sync.automations import fieldmap, mapping_store
from integrations.sync.automations.fieldmap import Scope
from integrations.sync.automations.soql_guard import build_select
from integrations.sync.automations.step_plan import (
    Env,
    Plan,
    delegate_key,
    enqueue_job,
    mapped_fields,
    person_sobject,
    record_id_param,
)
from integrations.sync.automations.suppression import suppress
from integrations.sync.automations.task_fields import CALL_LOG_FIELDS, FOLLOW_UP_FROM_MAPPING
from integrations.sync.callers.matching import (
    Match,
    creation_lock,
    linked,
    remember_caller,
)
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import LOG_CALL

QUERY_ROWS_KEPT = 200  # rows of an A19 result kept for later steps and the timeline
PEOPLE = {"Lead", "Contact", "Account"}  # the objects the orgs' duplicate rules watch


def plan_create(sobject: str) -> Callable[[dict[str, Any], Scope, Env], Plan]:
    def plan(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
        name = api_name(sobject or str(params.get("sobject") or ""))
        fields = mapped_fields(params, name, scope, env)
        return Plan("salesforce", f"create {name}", fields, extra=_rows(params, name, env))

    return plan


def _rows(params: dict[str, Any], sobject: str, env: Env) -> dict[str, Any]:
    """The mapping rows behind the fields, to name in Salesforce's refusal of a value."""
    rows = mapping_store.mapping_rows(
        env.engine, sobject, params.get("fields"), params.get("use_mapping", True)
    )
    return {"rows": rows}


def plan_task(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    if params.get("call_task"):
        return Plan(
            "callbridge",
            "log the call (the call's Task)",
            {"job": LOG_CALL, "call": env.call_id},
            note="created once per call and updated by its later events",
        )
    # A follow-up to-do. The Task mapping describes the call's own Task (its subject, type,
    # description, call-log fields): a follow-up takes only its owner and due date from it.
    fields = mapped_fields({**params, "use_mapping": False}, "Task", scope, env)
    said = ["a follow-up Task, not a logged call"]
    if params.get("use_mapping", True):
        mapping = mapping_store.load_mapping(env.engine, "Task")
        kept = {name: mapping[name] for name in FOLLOW_UP_FROM_MAPPING if name in mapping}
        fields = {**fieldmap.apply_mapping(kept, scope), **fields}
        said.append("only its owner and due date come from the Task mapping")
    dropped = [name for name in CALL_LOG_FIELDS if fields.pop(name, None) is not None]
    if fields.get("TaskSubtype") == "Call":
        del fields["TaskSubtype"]
        dropped.append("TaskSubtype")
    if dropped:
        said.append(f"{', '.join(dropped)} stay on the call's own Task")
    note = "; ".join(said)
    return Plan("salesforce", "create Task", fields, note=note, extra=_rows(params, "Task", env))


def plan_query(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    return Plan("salesforce", "query", build_select(str(params.get("query") or ""), scope))


def _person_object(params: dict[str, Any], record: Any) -> str:
    """A person's object: a Lead or Contact by its id, or the person account the step names."""
    named = "Account" if params.get("sobject") == "Account" else "Contact"
    return person_sobject(record) or named


def _for(sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A person's fields as ``sobject`` names them (a person account: ``PersonDoNotCall``)."""
    return person_accounts.account_fields(fields) if sobject == "Account" else fields


def plan_update(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    sobject = api_name(str(params.get("sobject") or ""))
    record = record_id_param(params, "id", scope)
    fields = fieldmap.apply_mapping(params.get("fields") or {}, scope)
    return Plan("salesforce", f"update {sobject}", fields, extra={"id": record, "sobject": sobject})


def plan_status(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    """Lead ``Status``; a Contact's status is the field ``DISPOSITION_CONTACT_STATUS_FIELD``."""
    record = record_id_param(params, "record", scope)
    sobject = person_sobject(record) or str(params.get("sobject") or "Lead")
    status_field = params.get("field") or (
        "Status" if sobject == "Lead" else env.settings.disposition_contact_status_field
    )
    value = fieldmap.evaluate(params.get("value"), scope)
    if not status_field or value is None:
        return Plan("salesforce", f"update {sobject} status", {}, note="no status to set")
    return Plan(
        "salesforce",
        f"update {sobject} status",
        _for(sobject, {api_name(status_field): value}),
        extra={"id": record, "sobject": sobject},
    )


def plan_stage(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    record = record_id_param(params, "opportunity", scope)
    stage = fieldmap.evaluate(params.get("stage"), scope)
    return Plan(
        "salesforce",
        "update Opportunity stage",
        {"StageName": stage},
        extra={"id": record, "sobject": "Opportunity"},
    )


def event_fields(
    start: datetime, minutes: int, who: str | None, what: str | None
) -> dict[str, Any]:
    """Event timing in UTC (contract 5.3): a start and a duration, never both end and duration.

    A Lead as ``WhoId`` cannot have a ``WhatId`` (Salesforce refuses the pair), so it is dropped.
    """
    fields: dict[str, Any] = {
        "StartDateTime": fieldmap.salesforce_datetime(start),
        "DurationInMinutes": int(minutes),
        "IsAllDayEvent": False,
    }
    if who:
        fields["WhoId"] = who
    if what and not (isinstance(who, str) and who.startswith("00Q")):
        fields["WhatId"] = what
    return fields


def plan_event(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    fields = mapped_fields(params, "Event", scope, env)
    start_value = fieldmap.evaluate(params.get("start"), scope)
    start = fieldmap.as_datetime(start_value) if start_value is not None else None
    if start is None:
        raise BadInput("create_event needs a start (UNIX seconds or an ISO time)")
    minutes = fieldmap.evaluate(params.get("duration_minutes", 30), scope)
    if isinstance(minutes, str) and minutes.isdigit():
        minutes = int(minutes)
    if not isinstance(minutes, int) or not 0 < minutes <= 14 * 24 * 60:
        raise BadInput("duration_minutes must be between 1 and 20160")
    who = record_id_param(params, "who", scope)
    what = record_id_param(params, "what", scope)
    for key in ("StartDateTime", "EndDateTime", "ActivityDateTime", "DurationInMinutes"):
        fields.pop(key, None)
    fields.update(event_fields(start, minutes, who, what))
    return Plan("salesforce", "create Event", fields)


def plan_flag_phone(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    """Wrong Number: a line in the record's Description (and ``field`` set true, if named)."""
    record = record_id_param(params, "record", scope)
    sobject = _person_object(params, record)
    note = str(fieldmap.evaluate(params.get("note"), scope) or "Phone number flagged invalid")
    fields: dict[str, Any] = {}
    if params.get("field"):
        fields = _for(sobject, {api_name(str(params["field"])): True})
    return Plan(
        "salesforce",
        f"flag {sobject} phone invalid",
        {**fields, "Description": f"+ {note}"},
        extra={"id": record, "sobject": sobject, "note": note, "fields": fields},
    )


def plan_dnc(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    record = record_id_param(params, "record", scope)
    sobject = _person_object(params, record)
    return Plan(
        "salesforce",
        f"set {sobject} Do Not Call",
        _for(sobject, {"DoNotCall": True, "HasOptedOutOfEmail": True}),
        extra={"id": record, "sobject": sobject, "e164": scope.dialer.get("contact_phone")},
    )


def plan_match_or_create(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    sobject = str(params.get("sobject") or "Contact")
    if sobject not in ("Contact", "Lead"):
        raise BadInput("match_or_create makes a Contact or a Lead")
    return Plan(
        "salesforce",
        f"match or create {sobject}",
        mapped_fields(params, sobject, scope, env),
        note="matched by E.164 phone, then email; created only when nothing matches",
        extra={
            "sobject": sobject,
            "e164": scope.dialer.get("contact_phone"),
            "email": scope.dialer.get("contact_email"),
            "information": scope.contact.get("information") or "",
        },
    )


def note_own_write(engine: Engine, sobject: str, record_id: str, created: bool) -> None:
    with Session(engine) as s:
        note_write(s, sobject, record_id, created=created)
        s.commit()


async def create_noted(ctx: Context, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Create a record, noted as ours (polling must not report it as new). A Lead, Contact or
    Account the org's duplicate rule refuses is the record the rule matched instead."""
    if sobject not in PEOPLE:
        record_id = await ctx.create(sobject, fields)
        await ctx.db(note_own_write, ctx.engine, sobject, record_id, True)
        return {"id": record_id, "sobject": sobject}
    record_id, duplicate = await ctx.create_or_match(sobject, fields)
    if duplicate is not None:
        return {**linked(duplicate), "sobject": duplicate.sobject}
    await ctx.db(note_own_write, ctx.engine, sobject, record_id, True)
    return {"id": record_id, "sobject": sobject}


async def update_noted(ctx: Context, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
    """Change a record, noted first: a poll between the write and the note would see an echo."""
    await ctx.db(note_own_write, ctx.engine, sobject, record_id, False)
    await ctx.update(sobject, record_id, fields)


async def run_create(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    try:
        return await create_noted(ctx, plan.operation.split(" ", 1)[1], plan.sent)
    except RemoteRejected as exc:
        named = mapping_store.name_rows(exc, plan.extra.get("rows") or {})
        if named is exc:
            raise
        raise named from exc


async def run_task(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    if plan.sent.get("job") == LOG_CALL:
        if env.call_id is None:
            return {"skipped": "not a call"}
        key = delegate_key(LOG_CALL, env.call_id)
        await enqueue_job(ctx, env, LOG_CALL, key, call_id=env.call_id, event_id=job.event_id)
        return {"queued": key}
    return await run_create(ctx, job, plan, env)


async def run_query(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    rows = await ctx.sf(ctx.salesforce.query, plan.sent)
    rows = [{k: v for k, v in row.items() if k != "attributes"} for row in rows]
    return {
        "totalSize": len(rows),
        "first": rows[0] if rows else None,
        "records": rows[:QUERY_ROWS_KEPT],
    }


async def run_update(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    record, sobject = plan.extra.get("id"), plan.extra.get("sobject")
    if not plan.sent or not record:
        return {"skipped": plan.note or "no record to update"}
    await update_noted(ctx, sobject, record, plan.sent)
    return {"id": record, "sobject": sobject, "updated": sorted(plan.sent)}


def merge_note(description: str | None, note: str) -> str:
    """Add ``note`` as a line of the Description once; what people wrote stays."""
    current = description or ""
    if note in current:
        return current
    return f"{current.rstrip()}\n{note}".strip()[:32000]


async def run_flag_phone(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    record, sobject = plan.extra.get("id"), plan.extra["sobject"]
    if not record:
        return {"skipped": "no record to flag"}
    current = await ctx.sf(ctx.salesforce.get, sobject, record, ["Description"])
    changes = {
        **plan.extra["fields"],
        "Description": merge_note(current.get("Description"), plan.extra["note"]),
    }
    await update_noted(ctx, sobject, record, changes)
    return {"id": record, "sobject": sobject, "flagged": True}


async def run_dnc(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    e164 = plan.extra.get("e164")
    if e164:  # suppressed first: even if Salesforce refuses, we stop calling
        await ctx.db(suppress, env.engine, e164, plan.extra.get("id"), env.call_id)
    result = await run_update(ctx, job, plan, env)
    return {**result, "suppressed": e164}


async def run_match_or_create(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    extra = plan.extra
    information = str(extra.get("information") or "")
    if aircall_actions.SALESFORCE_ID in information:
        # Made by Callbridge from a Salesforce record (T01/T02 → A01): not new to Salesforce.
        return {"skipped": "made from a Salesforce record", "information": information}
    e164, email, sobject = extra.get("e164"), extra.get("email"), extra["sobject"]

    async def by_phone() -> dict[str, Any] | None:
        if not e164:
            return None
        decision = await ctx.caller(e164)
        if decision.match is not None:
            match = decision.match
            return {"id": match.id, "sobject": match.sobject, "matched": "phone"}
        if decision.needs_review:
            return {"review": [c["id"] for c in decision.candidates], "matched": "phone"}
        return None

    def by_email() -> dict[str, Any] | None:
        if not isinstance(email, str) or "@" not in email:
            return None
        queries = (
            ("Contact", "SELECT Id, Name FROM Contact WHERE Email = {} LIMIT 1"),
            ("Lead", "SELECT Id, Name FROM Lead WHERE Email = {} AND IsConverted = false LIMIT 1"),
        )
        for found_type, soql in queries:
            rows = ctx.salesforce.query(soql, email.strip())
            if rows:
                return {"id": rows[0]["Id"], "sobject": found_type, "matched": "email"}
        return None

    found = await by_phone() or await ctx.sf(by_email)
    if found is not None:
        return found
    async with creation_lock(ctx.engine, (e164 or str(email) or "anonymous")[:40]):
        found = await by_phone()  # the local index sees what another worker created
        if found is not None:
            return found
        made = await create_noted(ctx, sobject, plan.sent)
        if e164:
            name = " ".join(
                str(plan.sent[k]) for k in ("FirstName", "LastName") if plan.sent.get(k)
            )
            match = Match(made["sobject"], made["id"], "" if "linked" in made else name)
            await ctx.db(remember_caller, ctx.engine, e164, match)
    return made if "linked" in made else {**made, "created": True}
