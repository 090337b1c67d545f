"""The actions an automation (or a disposition) runs, and the engine that runs them in order.

Each action is planned first (``plan``: what it would send, computed from the field mapping and
its inputs, without sending anything: the dry run shows exactly this) and then executed. A step's
result is kept (``AutomationEffect``) before the next step starts, so a retried or re-synced run
reuses what earlier attempts did instead of creating records twice; and it is recorded on the
call's timeline (``JobStep``): what was sent, what came back.

Codes are the catalogue's, prefixed by the service: ``salesforce:A01`` Create Record (any object),
``salesforce:A04`` Create Lead, ``salesforce:A06`` Create Contact, ``salesforce:A08`` Create
Opportunity, ``salesforce:A09`` Create Task (``call_task: true``: the call's own Task, kept up to
date by the E12 → A09 log), ``salesforce:A19`` Custom SOQL Query (SELECT only), plus what the
disposition rules need (``update_status``, ``update_stage``, ``create_event``, ``update_record``,
``flag_phone``, ``do_not_call``, ``match_or_create``), and on Aircall's side ``aircall:A01``
(the Aircall contact of the Salesforce record of a T01-T05 trigger), ``aircall:A06`` (the
insight card), ``aircall:A04`` (comment), ``aircall:dialer_requeue``. A04 and A06 act on the
event's call, or on the call a ``call`` source names (on a Salesforce trigger, e.g. a Task's
``{{record.CallObject}}``).

Salesforce writes are noted (``note_write``: a change before it is sent, a creation as soon as
its id is known), so a record an automation creates or changes does not fire T01-T04 back: an
automation on T04 that updates its own record does not loop.

Inputs are mapping sources (``automations.fieldmap``): ``{{steps.1.id}}`` is the id the
first step created, ``{{steps.2.first.Id}}`` the first row of a query in step 2,
``{{steps.2.records.1.Name}}`` the second row's name.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from simple_salesforce.format import format_soql
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from integrations.aircall import actions as aircall_actions
from integrations.errors import BadInput, RemoteRejected
from integrations.salesforce.soql import api_name
from integrations.settings import Settings
from integrations.store.automation_models import AutomationEffect, SuppressedNumber
from integrations.store.db import insert_ignore
from integrations.store.models import Call, Job
from integrations.store.salesforce_sync import note_write
from integrations.sync.automations import aircall_contacts, fieldmap
from integrations.sync.automations.fieldmap import Pending, Scope
from integrations.sync.callers.matching import (
    Match,
    creation_lock,
    remember_caller,
)
from integrations.sync.jobs import queue
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import DIALER_REQUEUE, INSIGHT_CARD, LOG_CALL

QUERY_ROWS_KEPT = 200  # rows of an A19 result kept for later steps and the timeline
PERSON_PREFIXES = {"003": "Contact", "00Q": "Lead"}
# Step parameters that are names or numbers, not mapping sources.
PLAIN_PARAMS = {"action", "name", "sobject", "field", "call_task", "use_mapping", "delay_seconds"}
SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_RECORD_FIELD = re.compile(r"(?<![\w.])record\.([A-Za-z][A-Za-z0-9_]*)")


@dataclass
class Env:
    """What planning needs besides the scope: the store (mappings) and the settings."""

    engine: Engine
    settings: Settings
    call_id: int | None = None


@dataclass
class Plan:
    """What a step will send: the service, a short operation name, and the payload."""

    service: str
    operation: str
    sent: Any
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # execution details, not shown


class SoqlRefused(BadInput):
    """A19 refused the statement before it reached Salesforce."""


# -- A19: SELECT only ---------------------------------------------------------------------------

_FORBIDDEN_WORDS = {
    "INSERT",
    "UPDATE",
    "DELETE",
    "UPSERT",
    "MERGE",
    "UNDELETE",
    "DROP",
    "CREATE",
    "ALTER",
    "TRUNCATE",
    "GRANT",
    "EXEC",
    "EXECUTE",
}
_WORD = re.compile(r"[A-Za-z0-9_.:]+")


@dataclass(frozen=True)
class Token:
    kind: str  # word | string | placeholder | punct
    text: str
    start: int
    end: int


def soql_tokens(statement: str) -> list[Token]:
    """SOQL split into words, string literals, ``{{...}}`` placeholders and punctuation.

    Refuses (``SoqlRefused``) what SOQL never needs and injection relies on: an unterminated
    string, ``;``, comments, double quotes, backslashes or braces outside string literals.
    """
    tokens: list[Token] = []
    i, n = 0, len(statement)
    while i < n:
        c = statement[i]
        if c.isspace():
            i += 1
        elif c == "'":
            j = i + 1
            while j < n and statement[j] != "'":
                j += 2 if statement[j] == "\\" else 1
            if j >= n:
                raise SoqlRefused("unterminated string literal")
            tokens.append(Token("string", statement[i : j + 1], i, j + 1))
            i = j + 1
        elif statement.startswith("{{", i):
            j = statement.find("}}", i + 2)
            if j < 0:
                raise SoqlRefused("unclosed {{ placeholder")
            tokens.append(Token("placeholder", statement[i + 2 : j].strip(), i, j + 2))
            i = j + 2
        elif _WORD.match(statement, i):
            match = _WORD.match(statement, i)
            assert match is not None  # noqa: S101  (just matched)
            tokens.append(Token("word", match[0], i, match.end()))
            i = match.end()
        elif c in ",()=<>!+-*/%":
            if statement.startswith(("--", "/*"), i):
                raise SoqlRefused("comments are not SOQL")
            tokens.append(Token("punct", c, i, i + 1))
            i += 1
        else:
            raise SoqlRefused(f"{c!r} is not allowed outside a string literal")
    return tokens


def check_select(statement: str, *, template: bool = True) -> list[Token]:
    """The statement's tokens when it is one SELECT, else ``SoqlRefused`` saying why.

    In a template, ``{{...}}`` inside quotes is refused (it would not be escaped); in the final
    statement the same characters are only a value's text.
    """
    tokens = soql_tokens(statement)
    if not tokens or tokens[0].kind != "word" or tokens[0].text.upper() != "SELECT":
        raise SoqlRefused("only a SELECT statement can run")
    for token in tokens:
        if token.kind == "word" and token.text.upper() in _FORBIDDEN_WORDS:
            raise SoqlRefused(f"{token.text.upper()} is not allowed in a query")
        if template and token.kind == "string" and "{{" in token.text:
            raise SoqlRefused("write {{...}} outside quotes: the value is quoted for you")
    if "FROM" not in {t.text.upper() for t in tokens if t.kind == "word"}:
        raise SoqlRefused("a SELECT needs FROM")
    return tokens


def soql_literal(value: Any) -> str:
    """A value as a SOQL literal, escaped by simple-salesforce's ``format_soql``."""
    if isinstance(value, Pending):
        value = f"<steps.{value.step}>"
    if isinstance(value, dict):
        raise BadInput("an object cannot be a SOQL value; pick one of its fields")
    return format_soql("{}", value)


def build_select(template: str, scope: Scope) -> str:
    """The template with each ``{{source}}`` replaced by its value as an escaped literal.

    The template is checked before (one SELECT), and the result again: a value can only ever
    become one literal, never change the statement.
    """
    tokens = check_select(template)
    parts, last = [], 0
    for token in tokens:
        if token.kind == "placeholder":
            parts.append(template[last : token.start])
            parts.append(soql_literal(fieldmap.evaluate(token.text, scope)))
            last = token.end
    parts.append(template[last:])
    statement = "".join(parts)
    check_select(statement, template=False)
    return statement


# -- planning -----------------------------------------------------------------------------------


def _fields(params: dict[str, Any], sobject: str, scope: Scope, env: Env) -> dict[str, Any]:
    mapping = fieldmap.load_mapping(env.engine, sobject) if params.get("use_mapping", True) else {}
    fields = fieldmap.apply_mapping(mapping, scope)
    fields.update(fieldmap.apply_mapping(params.get("fields") or {}, scope))
    return fields


def _record_id(params: dict[str, Any], key: str, scope: Scope) -> Any:
    value = fieldmap.evaluate(params.get(key), scope)
    if isinstance(value, str) and value.startswith("<"):
        return value  # a dry run: an earlier step's id
    if value is None:
        return None
    if not isinstance(value, str) or not SALESFORCE_ID.fullmatch(value):
        raise BadInput(f"{key} is not a Salesforce id: {value!r}")
    return value


def plan_create(sobject: str) -> Callable[[dict[str, Any], Scope, Env], Plan]:
    def plan(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
        name = api_name(sobject or str(params.get("sobject") or ""))
        return Plan("salesforce", f"create {name}", _fields(params, name, scope, env))

    return plan


def plan_task(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    if params.get("call_task"):
        return Plan(
            "callbridge",
            "log the call (the call's Task)",
            {"job": LOG_CALL, "call": env.call_id},
            note="created once per call and updated by its later events",
        )
    return plan_create("Task")(params, scope, env)


def plan_query(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    return Plan("salesforce", "query", build_select(str(params.get("query") or ""), scope))


def plan_update(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    sobject = api_name(str(params.get("sobject") or ""))
    record = _record_id(params, "id", scope)
    fields = fieldmap.apply_mapping(params.get("fields") or {}, scope)
    return Plan("salesforce", f"update {sobject}", fields, extra={"id": record, "sobject": sobject})


def _person(record: Any) -> str | None:
    return PERSON_PREFIXES.get(record[:3]) if isinstance(record, str) else None


def plan_status(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    """Lead ``Status``; a Contact's status is the field ``DISPOSITION_CONTACT_STATUS_FIELD``."""
    record = _record_id(params, "record", scope)
    sobject = _person(record) or str(params.get("sobject") or "Lead")
    status_field = params.get("field") or (
        "Status" if sobject == "Lead" else env.settings.disposition_contact_status_field
    )
    value = fieldmap.evaluate(params.get("value"), scope)
    if not status_field or value is None:
        return Plan("salesforce", f"update {sobject} status", {}, note="no status to set")
    return Plan(
        "salesforce",
        f"update {sobject} status",
        {api_name(status_field): value},
        extra={"id": record, "sobject": sobject},
    )


def plan_stage(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    record = _record_id(params, "opportunity", scope)
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
    fields = _fields(params, "Event", scope, env)
    start_value = fieldmap.evaluate(params.get("start"), scope)
    start = fieldmap.as_datetime(start_value) if start_value is not None else None
    if start is None:
        raise BadInput("create_event needs a start (UNIX seconds or an ISO time)")
    minutes = fieldmap.evaluate(params.get("duration_minutes", 30), scope)
    if isinstance(minutes, str) and minutes.isdigit():
        minutes = int(minutes)
    if not isinstance(minutes, int) or not 0 < minutes <= 14 * 24 * 60:
        raise BadInput("duration_minutes must be between 1 and 20160")
    who = _record_id(params, "who", scope)
    what = _record_id(params, "what", scope)
    for key in ("StartDateTime", "EndDateTime", "ActivityDateTime", "DurationInMinutes"):
        fields.pop(key, None)
    fields.update(event_fields(start, minutes, who, what))
    return Plan("salesforce", "create Event", fields)


def plan_flag_phone(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    """Wrong Number: a line in the record's Description (and ``field`` set true, if named)."""
    record = _record_id(params, "record", scope)
    sobject = _person(record) or "Contact"
    note = str(fieldmap.evaluate(params.get("note"), scope) or "Phone number flagged invalid")
    fields: dict[str, Any] = {}
    if params.get("field"):
        fields[api_name(str(params["field"]))] = True
    return Plan(
        "salesforce",
        f"flag {sobject} phone invalid",
        {**fields, "Description": f"+ {note}"},
        extra={"id": record, "sobject": sobject, "note": note, "fields": fields},
    )


def plan_dnc(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    record = _record_id(params, "record", scope)
    sobject = _person(record) or "Contact"
    return Plan(
        "salesforce",
        f"set {sobject} Do Not Call",
        {"DoNotCall": True, "HasOptedOutOfEmail": True},
        extra={"id": record, "sobject": sobject, "e164": scope.dialer.get("contact_phone")},
    )


def plan_match_or_create(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    sobject = str(params.get("sobject") or "Contact")
    if sobject not in ("Contact", "Lead"):
        raise BadInput("match_or_create makes a Contact or a Lead")
    return Plan(
        "salesforce",
        f"match or create {sobject}",
        _fields(params, sobject, scope, env),
        note="matched by E.164 phone, then email; created only when nothing matches",
        extra={
            "sobject": sobject,
            "e164": scope.dialer.get("contact_phone"),
            "email": scope.dialer.get("contact_email"),
            "information": scope.contact.get("information") or "",
        },
    )


def _call_id(params: dict[str, Any], scope: Scope, env: Env) -> Any:
    """The event's call, or the one the step's ``call`` source names (an Aircall call id)."""
    if "call" not in params:
        return env.call_id
    value = fieldmap.evaluate(params["call"], scope)
    if value is None or (isinstance(value, str) and value.startswith("<")):
        return value  # none, or a dry run's earlier step
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise BadInput(f"call is not an Aircall call id: {value!r}")
    return int(text)


def plan_card(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    call = _call_id(params, scope, env)
    return Plan("callbridge", "insight card", {"job": INSIGHT_CARD, "call": call})


def plan_comment(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    text = fieldmap.evaluate(params.get("text"), scope)
    return Plan("aircall", "add comment", {"call": _call_id(params, scope, env), "content": text})


def plan_contact(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    """A01: the trigger's record as an Aircall contact, with the step's names in place."""
    sobject, record_id = scope.event.get("sobject"), scope.event.get("id")
    if not sobject or not record_id:
        raise BadInput("aircall:A01 makes the Aircall contact of a Salesforce trigger's record")
    record = dict(scope.event.get("record") or {})
    overrides = fieldmap.apply_mapping(params.get("fields") or {}, scope)
    note = None
    try:
        body = aircall_actions.contact_body(record, record_id, env.settings.default_region)
    except aircall_actions.NoPhone:
        body = {"information": f"{aircall_actions.SALESFORCE_ID}{record_id}"}
        note = "no phone field in the trigger's data: the record is read when the step runs"
    return Plan(
        "aircall",
        "create contact",
        aircall_contacts.customise(body, overrides),
        note=note or "found by phone instead when an Aircall contact has one of the numbers",
        extra={"sobject": sobject, "id": record_id, "record": record, "overrides": overrides},
    )


def plan_requeue(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    user = fieldmap.evaluate(params.get("user", "call.user.id"), scope)
    number = fieldmap.evaluate(params.get("number", "contact_phone"), scope)
    delay = float(params.get("delay_seconds", 0) or 0)
    return Plan(
        "callbridge",
        "re-queue in the Power Dialer",
        {"user": user, "number": number, "delay_seconds": delay},
    )


# -- execution ----------------------------------------------------------------------------------


Execute = Callable[[Context, Job, Plan, Env], Awaitable[dict[str, Any]]]


def _note_write(engine: Engine, sobject: str, record_id: str, created: bool) -> None:
    with Session(engine) as s:
        note_write(s, sobject, record_id, created=created)
        s.commit()


async def _created(ctx: Context, sobject: str, fields: dict[str, Any]) -> str:
    """Create a record, noted as ours (polling must not report it as new)."""
    record_id = await ctx.sf(ctx.salesforce.create, sobject, fields)
    await ctx.db(_note_write, ctx.engine, sobject, record_id, True)
    return record_id


async def _updated(ctx: Context, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
    """Change a record, noted first: a poll between the write and the note would see an echo."""
    await ctx.db(_note_write, ctx.engine, sobject, record_id, False)
    await ctx.sf(ctx.salesforce.update, sobject, record_id, fields)


async def run_create(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    sobject = plan.operation.split(" ", 1)[1]
    record_id = await _created(ctx, sobject, plan.sent)
    return {"id": record_id, "sobject": sobject}


async def _enqueue(ctx: Context, env: Env, kind: str, key: str, **kwargs: Any) -> None:
    def write() -> None:
        with Session(env.engine) as s:
            queue.enqueue(s, kind=kind, key=key, **kwargs)
            s.commit()

    await ctx.db(write)


def delegate_key(kind: str, call_id: int) -> str:
    return f"{kind}:{call_id}"


async def run_task(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    if plan.sent.get("job") == LOG_CALL:
        if env.call_id is None:
            return {"skipped": "not a call"}
        key = delegate_key(LOG_CALL, env.call_id)
        await _enqueue(ctx, env, LOG_CALL, key, call_id=env.call_id, event_id=job.event_id)
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
    await _updated(ctx, sobject, record, plan.sent)
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
    await _updated(ctx, sobject, record, changes)
    return {"id": record, "sobject": sobject, "flagged": True}


def suppress(engine: Engine, e164: str, record_id: str | None, call_id: int | None) -> None:
    with Session(engine) as s:
        s.execute(
            insert_ignore(
                engine,
                SuppressedNumber.__table__,
                {
                    "e164": e164,
                    "record_id": record_id,
                    "call_id": call_id,
                    "reason": "DNC requested",
                    "created_at": time.time(),
                },
            )
        )
        s.commit()


def is_suppressed(engine: Engine, e164: str | None) -> bool:
    """True for a number that asked not to be called: outbound actions must leave it alone."""
    if not e164:
        return False
    with Session(engine) as s:
        return s.get(SuppressedNumber, e164) is not None


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
        record_id = await _created(ctx, sobject, plan.sent)
        if e164:
            name = " ".join(
                str(plan.sent[k]) for k in ("FirstName", "LastName") if plan.sent.get(k)
            )
            await ctx.db(remember_caller, ctx.engine, e164, Match(sobject, record_id, name))
    return {"id": record_id, "sobject": sobject, "created": True}


def _stored(engine: Engine, call_id: int) -> bool:
    with Session(engine) as s:
        return s.get(Call, call_id) is not None


async def run_card(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    call_id = plan.sent.get("call")
    if call_id is None:
        return {"skipped": "not a call"}
    if call_id != env.call_id and not await ctx.db(_stored, env.engine, call_id):
        return {"skipped": f"call {call_id} is not known to Callbridge"}
    key = delegate_key(INSIGHT_CARD, call_id)
    await _enqueue(
        ctx,
        env,
        INSIGHT_CARD,
        key,
        call_id=call_id,
        event_id=job.event_id if call_id == env.call_id else None,
    )
    return {"queued": key}


async def run_comment(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    call_id, text = plan.sent.get("call"), plan.sent.get("content")
    if call_id is None or not text:
        return {"skipped": "no call or no text"}
    outcome = await aircall_actions.add_comments(ctx.aircall, call_id, [str(text)])
    return {"posted": outcome.posted, "unplaced": outcome.unplaced}


async def run_contact(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    extra = plan.extra
    return await aircall_contacts.record_contact(
        ctx,
        job,
        extra["sobject"],
        extra["id"],
        extra["record"],
        extra["overrides"],
        timeline=False,
    )


async def run_requeue(ctx: Context, job: Job, plan: Plan, env: Env) -> dict[str, Any]:
    user, number = plan.sent.get("user"), plan.sent.get("number")
    if not isinstance(user, int) or not number:
        return {"skipped": "no agent or no number to call back"}
    if await ctx.db(is_suppressed, env.engine, number):
        return {"skipped": "the number asked not to be called (DNC)"}
    run_at = time.time() + float(plan.sent.get("delay_seconds") or 0)
    key = f"{DIALER_REQUEUE}:{env.call_id or number}"
    await _enqueue(
        ctx,
        env,
        DIALER_REQUEUE,
        key,
        call_id=env.call_id,
        payload={"user": user, "number": number},
        run_at=run_at,
    )
    return {"queued": key, "run_at": run_at}


async def dialer_requeue(ctx: Context, job: Job) -> dict[str, Any]:
    """Job: put the number back in the agent's Aircall Power Dialer (after its delay)."""
    user, number = job.payload["user"], job.payload["number"]
    if await ctx.db(is_suppressed, ctx.engine, number):
        await ctx.record(job, "callbridge", "dialer re-queue skipped", number, "DNC requested")
        return {"skipped": "the number asked not to be called (DNC)"}
    body = {"phone_numbers": [number]}
    try:
        await ctx.aircall.queue_dialer_numbers(int(user), [number])
    except RemoteRejected as exc:
        if exc.status == 422 and "already" in str(exc.body).lower():
            await ctx.record(job, "aircall", "dialer re-queue", body, exc.body)
            return {"user": user, "number": number, "already_queued": True}
        await ctx.record(job, "aircall", "dialer re-queue", body, exc.body, ok=False)
        raise
    await ctx.record(job, "aircall", "dialer re-queue", body, "queued")
    return {"user": user, "number": number, "queued": True}


@dataclass(frozen=True)
class ActionSpec:
    code: str
    label: str
    plan: Callable[[dict[str, Any], Scope, Env], Plan]
    execute: Execute
    delegates: str | None = None  # the job kind it only queues (E12 → A09, E04 → A06)


ACTIONS: dict[str, ActionSpec] = {
    spec.code: spec
    for spec in (
        ActionSpec("salesforce:A01", "Create Record", plan_create(""), run_create),
        ActionSpec("salesforce:A04", "Create Lead", plan_create("Lead"), run_create),
        ActionSpec("salesforce:A06", "Create Contact", plan_create("Contact"), run_create),
        ActionSpec("salesforce:A08", "Create Opportunity", plan_create("Opportunity"), run_create),
        ActionSpec("salesforce:A09", "Create Task", plan_task, run_task),
        ActionSpec("salesforce:A19", "Custom SOQL Query", plan_query, run_query),
        ActionSpec("salesforce:update_record", "Update Record", plan_update, run_update),
        ActionSpec(
            "salesforce:update_status", "Update Lead/Contact status", plan_status, run_update
        ),
        ActionSpec("salesforce:update_stage", "Update Opportunity stage", plan_stage, run_update),
        ActionSpec("salesforce:create_event", "Create Event", plan_event, run_create),
        ActionSpec("salesforce:flag_phone", "Flag phone invalid", plan_flag_phone, run_flag_phone),
        ActionSpec("salesforce:do_not_call", "Do Not Call", plan_dnc, run_dnc),
        ActionSpec(
            "salesforce:match_or_create",
            "Find or create the Contact/Lead",
            plan_match_or_create,
            run_match_or_create,
        ),
        ActionSpec("aircall:A01", "Create Contact", plan_contact, run_contact),
        ActionSpec("aircall:A06", "Display Insight Card", plan_card, run_card, INSIGHT_CARD),
        ActionSpec("aircall:A04", "Add Comment to Call", plan_comment, run_comment),
        ActionSpec("aircall:dialer_requeue", "Re-queue in Power Dialer", plan_requeue, run_requeue),
    )
}


def delegated_kind(step: dict[str, Any]) -> str | None:
    """The job an action only queues for the event's call (its Task, its card), else None."""
    if step.get("action") == "salesforce:A09" and step.get("call_task"):
        return LOG_CALL
    spec = ACTIONS.get(str(step.get("action")))
    return spec.delegates if spec and "call" not in step else None


def record_delegate(step: dict[str, Any]) -> bool:
    """True for a plain ``aircall:A01`` (nothing customised): the record's ``aircall_contact``
    job does it, one per record whichever trigger (T01, T05) asked first."""
    return step.get("action") == "aircall:A01" and set(step) <= {"action", "name"}


def _sources(step: dict[str, Any]) -> list[tuple[str, str]]:
    """(parameter, source) for every mapping source a step reads (the SOQL's placeholders)."""
    found = []
    for key, value in step.items():
        if key in PLAIN_PARAMS:
            continue
        for item in value.values() if isinstance(value, dict) else [value]:
            if key == "query":
                check_select(str(item))
                found += [(key, t.text) for t in soql_tokens(str(item)) if t.kind == "placeholder"]
            elif isinstance(item, str):
                found.append((key, item))
    return found


def check_step(step: dict[str, Any], number: int) -> None:
    """``BadInput`` when a step names an unknown action or reads a later step."""
    spec = ACTIONS.get(str(step.get("action")))
    if spec is None:
        raise BadInput(f"step {number}: unknown action {step.get('action')!r}")
    if spec.code == "aircall:A01":
        unknown = set(step.get("fields") or {}) - set(aircall_contacts.CONTACT_FIELDS)
        if unknown:
            raise BadInput(
                f"step {number}: an Aircall contact has no field {sorted(unknown)[0]!r} "
                f"(settable: {', '.join(aircall_contacts.CONTACT_FIELDS)})"
            )
    for key, source in _sources(step):
        try:
            fieldmap.parse_source(source)
        except ValueError as exc:
            raise BadInput(f"step {number}, {key}: {exc}") from None
        for used in re.findall(r"steps\.(\d+)", source):
            if not 0 < int(used) < number:
                raise BadInput(f"step {number} reads step {used}, which has not run yet")


def check_for_trigger(step: dict[str, Any], number: int, *, on_record: bool) -> None:
    """``BadInput`` when a (checked) step reads what its trigger does not have.

    A Salesforce trigger (``on_record``) has a record and no call; an Aircall event the reverse.
    """
    code = str(step.get("action"))
    roots = set()
    for _key, source in _sources(step):
        roots |= fieldmap.referenced(source)
    if on_record:
        reads_call = roots & {"call", "contact"}
        if reads_call:
            raise BadInput(
                f"step {number} reads {sorted(reads_call)[0]}: a Salesforce trigger has no "
                "Aircall call or contact; read the record (record.<Field>) instead"
            )
        if code == "salesforce:A09" and step.get("call_task"):
            raise BadInput(f"step {number}: the call's own Task needs a call; map a Task instead")
        if code in ("aircall:A04", "aircall:A06") and not step.get("call"):
            raise BadInput(
                f"step {number}: {code} acts on a call; on a Salesforce trigger say which "
                "(call: a source giving an Aircall call id, e.g. {{record.CallObject}})"
            )
        if code == "aircall:dialer_requeue" and not step.get("user"):
            raise BadInput(f"step {number}: say which Aircall user's dialer (user)")
    else:
        if code == "aircall:A01":
            raise BadInput(
                f"step {number}: aircall:A01 makes the Aircall contact of a Salesforce record; "
                "use it on a Salesforce trigger (T01-T05)"
            )
        if "record" in roots:
            raise BadInput(f"step {number} reads record: only Salesforce triggers have one")


def record_fields(steps: list[dict[str, Any]]) -> set[str]:
    """Names of the record's fields the steps read (``record.<Field>``)."""
    return {
        match
        for step in steps
        for _key, source in _sources(step)
        for match in _RECORD_FIELD.findall(source)
    }


# -- running steps ------------------------------------------------------------------------------


def _effect(engine: Engine, scope_key: str, step: str) -> AutomationEffect | None:
    with Session(engine) as s:
        return s.exec(
            select(AutomationEffect).where(
                AutomationEffect.scope == scope_key, AutomationEffect.step == step
            )
        ).first()


def _keep_effect(engine: Engine, scope_key: str, step: str, result: Any) -> None:
    with Session(engine) as s:
        s.add(AutomationEffect(scope=scope_key, step=step, result=result, created_at=time.time()))
        try:
            s.commit()
        except IntegrityError:
            s.rollback()


async def run_steps(
    ctx: Context,
    job: Job,
    scope_key: str,
    steps: list[dict[str, Any]],
    scope: Scope,
    env: Env,
    *,
    label: str = "step",
) -> list[dict[str, Any]]:
    """Plan and run ``steps`` in order; a step done by an earlier attempt is not done again."""
    results = []
    for number, step in enumerate(steps, start=1):
        name = str(step.get("name") or number)
        done = await ctx.db(_effect, ctx.engine, scope_key, name)
        if done is not None:
            scope.steps[str(number)] = done.result
            results.append(done.result)
            continue
        spec = ACTIONS[step["action"]]
        action = f"{label} {name} {spec.code}"[:80]
        plan: Plan | None = None
        try:
            try:
                plan = spec.plan(step, scope, env)
            except (BadInput, ValueError) as exc:
                # The step cannot be built from this data: retrying cannot help, a fix can.
                raise RemoteRejected("callbridge", None, f"step {name}: {exc}") from exc
            result = await spec.execute(ctx, job, plan, env)
        except Exception as exc:
            await ctx.record(
                job,
                plan.service if plan else "callbridge",
                action,
                plan.sent if plan else step,
                getattr(exc, "body", None) or str(exc),
                ok=False,
            )
            raise
        await ctx.record(job, plan.service, action, plan.sent, result)
        await ctx.db(_keep_effect, ctx.engine, scope_key, name, result)
        scope.steps[str(number)] = result
        results.append(result)
    return results


@dataclass
class StepPreview:
    """What one step would send (a dry run), or why it could not be planned."""

    step: int
    action: str
    service: str
    operation: str
    sent: Any
    note: str | None = None


def preview(steps: list[dict[str, Any]], scope: Scope, env: Env) -> list[StepPreview]:
    """Plan every step without sending anything; later steps see earlier ones as pending."""
    previews = []
    for number, step in enumerate(steps, start=1):
        spec = ACTIONS.get(str(step.get("action")))
        if spec is None:
            previews.append(StepPreview(number, str(step.get("action")), "", "", None, "unknown"))
            continue
        try:
            plan = spec.plan(step, scope, env)
        except (BadInput, ValueError) as exc:
            previews.append(StepPreview(number, spec.code, "", "refused", None, str(exc)))
        else:
            previews.append(
                StepPreview(number, spec.code, plan.service, plan.operation, plan.sent, plan.note)
            )
        scope.steps[str(number)] = Pending(number)
    return previews


def next_business_day(after: datetime, days: int = 1) -> datetime:
    """``days`` working days (Monday to Friday) after ``after``; holidays are not known."""
    day = after
    while days > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def utc_now() -> datetime:
    return datetime.now(UTC)
