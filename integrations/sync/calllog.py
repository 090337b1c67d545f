"""E12 → A09: log an Aircall call as one Salesforce Task, and keep it up to date.

One Task per Aircall call id, whatever happens: the id of the Task we made is stored
(``SyncLink``), and after any retry we first look for a Task whose ``CallObject`` is the call
id, because an earlier attempt may have created it before its answer was lost.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from integrations.store.models import Call, Job, SyncLink
from integrations.sync.context import Context
from integrations.sync.mapping import task_fields
from integrations.sync.matching import Match, agent_user, caller_matches, choose

ACTION = "A09"
NOT_UPDATEABLE = {"TaskSubtype"}  # create-only in Salesforce


def _load(ctx: Context, call_id: int) -> tuple[dict[str, Any], str | None, str | None, str | None]:
    with Session(ctx.engine) as s:
        call = s.get(Call, call_id)
        if call is None:
            raise LookupError(f"call {call_id} not stored")
        link = s.exec(
            select(SyncLink.record_id).where(SyncLink.call_id == call_id, SyncLink.action == ACTION)
        ).first()
        return call.snapshot, call.e164, call.agent_email, link


def _link(ctx: Context, call_id: int, record_id: str) -> None:
    with Session(ctx.engine) as s:
        s.add(
            SyncLink(
                call_id=call_id,
                action=ACTION,
                sobject="Task",
                record_id=record_id,
                created_at=time.time(),
            )
        )
        try:
            s.commit()
        except IntegrityError:
            s.rollback()  # already linked by an earlier attempt


async def log_call(ctx: Context, job: Job) -> dict[str, Any]:
    settings = ctx.settings
    call_id = job.call_id
    assert call_id is not None  # noqa: S101  (log_call jobs always carry one)
    snapshot, e164, agent_email, task_id = await ctx.db(_load, ctx, call_id)
    max_age = settings.caller_cache_seconds
    who: Match | None = None
    if e164:
        matches = await ctx.sf(
            lambda: caller_matches(
                ctx.engine, ctx.salesforce, e164, region=settings.default_region, max_age=max_age
            )
        )
        who = choose(matches)
    owner = None
    if agent_email:
        owner = await ctx.sf(
            lambda: agent_user(ctx.engine, ctx.salesforce, agent_email, max_age=max_age)
        )
    fields = task_fields(
        snapshot, who, owner, region=settings.default_region, zone=settings.salesforce_time_zone
    )
    if task_id is None and job.attempts > 1:
        # An earlier attempt may have created the Task and lost the answer (timeout, kill).
        rows = await ctx.sf(
            ctx.salesforce.query, "SELECT Id FROM Task WHERE CallObject = {} LIMIT 1", str(call_id)
        )
        await ctx.record(job, "salesforce", "find Task by CallObject", str(call_id), rows)
        if rows:
            task_id = rows[0]["Id"]
            await ctx.db(_link, ctx, call_id, task_id)
    if task_id is None:
        try:
            task_id = await ctx.sf(ctx.salesforce.create, "Task", fields)
        except Exception as exc:
            await ctx.record(
                job, "salesforce", "create Task", fields, getattr(exc, "body", str(exc)), ok=False
            )
            raise
        await ctx.record(job, "salesforce", "create Task", fields, {"id": task_id})
        await ctx.db(_link, ctx, call_id, task_id)
        return {"action": ACTION, "sobject": "Task", "id": task_id, "created": True}
    changes = {key: value for key, value in fields.items() if key not in NOT_UPDATEABLE}
    try:
        await ctx.sf(ctx.salesforce.update, "Task", task_id, changes)
    except Exception as exc:
        await ctx.record(
            job, "salesforce", "update Task", changes, getattr(exc, "body", str(exc)), ok=False
        )
        raise
    await ctx.record(job, "salesforce", "update Task", changes, {"id": task_id})
    return {"action": ACTION, "sobject": "Task", "id": task_id, "created": False}
