"""The Aircall steps: the insight card (A06), a comment (A04), the Aircall contact of a
Salesforce record (A01), and the Power Dialer re-queue."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.aircall import actions as aircall_actions
from integrations.errors import BadInput, RemoteRejected
from integrations.store.models import Call, Job
from integrations.sync.automations import aircall_contacts, fieldmap
from integrations.sync.automations.fieldmap import Scope
from integrations.sync.automations.step_plan import (
    Env,
    Plan,
    delegate_key,
    enqueue_job,
    step_call_id,
)
from integrations.sync.automations.suppression import is_suppressed
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import DIALER_REQUEUE, INSIGHT_CARD


def plan_card(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    call = step_call_id(params, scope, env)
    return Plan("callbridge", "insight card", {"job": INSIGHT_CARD, "call": call})


def plan_comment(params: dict[str, Any], scope: Scope, env: Env) -> Plan:
    text = fieldmap.evaluate(params.get("text"), scope)
    return Plan(
        "aircall", "add comment", {"call": step_call_id(params, scope, env), "content": text}
    )


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
    await enqueue_job(
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
    await enqueue_job(
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
