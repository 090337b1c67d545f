"""E12 → A09: log an Aircall call as one Salesforce Task, and keep it up to date.

One Task per Aircall call id, whatever happens: the id of the Task we made is stored
(``SyncLink``), and after any retry we first look for a Task whose ``CallObject`` is the call
id, because an earlier attempt may have created it before its answer was lost.

Lifecycle: by default (``TASK_LOGGED_AT=answer``) the Task is created when the call is answered,
so a tag set during the call reaches Salesforce during the call, and updated as the hang-up,
``call.ended`` (duration, recording), tags, comments, the voicemail and the AI summary arrive.
An unanswered call is logged once it has ended. Updates send only the fields whose value we
change, and merge our text into the Description, so what people typed in Salesforce stays.

The Task's fields come from the manager's Task mapping (``fieldmap``, evaluated with the scope an
automation on the call would see), except those that make it the call's own Task
(``task_fields.FIXED_TASK_FIELDS``: ``CallObject``, ``TaskSubtype``, ``Status``, ``WhoId``,
``WhatId``).
When the mapping reads the recording and an answered call's ended snapshot lacks it, the run
asks Aircall for the call (``GET /v1/calls/{id}``), once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from integrations.errors import RemoteError, RemoteRejected
from integrations.salesforce import access
from integrations.salesforce.client import SalesforceClient
from integrations.store.models import Call, Job, SyncLink
from integrations.sync.automations import fieldmap, mapping_store
from integrations.sync.automations.fieldmap import Scope
from integrations.sync.automations.task_fields import call_type, task_fields
from integrations.sync.callers.matching import (
    GONE_CODES,
    Decision,
    Match,
    Policy,
    agent_user,
    creation_lock,
    heal,
    linked,
    remember_caller,
)
from integrations.sync.jobs import queue
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import KINDS, LOG_CALL

ACTION = KINDS[LOG_CALL].code  # "A09": finds the call's SyncLink
NOT_UPDATEABLE = {"TaskSubtype"}  # create-only in Salesforce
LIVE_STATUS = "In Progress"
# The Task itself was deleted (the recycle bin, or emptied from it): no field is named.
TASK_GONE = {"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY"}
WHO = {"WhoId", "WhatId"}  # the Task's record fields, refused when that record is gone
T = TypeVar("T")


@dataclass
class Stored:
    snapshot: dict[str, Any]
    e164: str | None
    agent_email: str | None
    ended: bool
    ai_summary: str | None
    task_id: str | None
    written: dict[str, Any]
    later_run_due: bool  # this job was asked to run again, and not before a time to come


def _load(ctx: Context, call_id: int, job_id: int | None) -> Stored:
    with Session(ctx.engine) as s:
        call = s.get(Call, call_id)
        if call is None:
            raise LookupError(f"call {call_id} not stored")
        row = s.get(Job, job_id) if job_id is not None else None
        link = s.exec(
            select(SyncLink).where(SyncLink.call_id == call_id, SyncLink.action == ACTION)
        ).first()
        return Stored(
            call.snapshot,
            call.e164,
            call.agent_email,
            call.ended,
            call.ai_summary,
            link.record_id if link else None,
            (link.written or {}) if link else {},
            row is not None and row.rerun and row.run_at > time.time(),
        )


def _link(ctx: Context, call_id: int, record_id: str, written: dict[str, Any]) -> None:
    with Session(ctx.engine) as s:
        s.add(
            SyncLink(
                call_id=call_id,
                action=ACTION,
                sobject="Task",
                record_id=record_id,
                created_at=time.time(),
                written=written,
            )
        )
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            _save_written(ctx, call_id, written)


def _unlink(ctx: Context, call_id: int) -> None:
    with Session(ctx.engine) as s:
        s.execute(delete(SyncLink).where(SyncLink.call_id == call_id, SyncLink.action == ACTION))
        s.commit()


def _save_written(ctx: Context, call_id: int, written: dict[str, Any]) -> None:
    with Session(ctx.engine) as s:
        s.execute(
            update(SyncLink)
            .where(SyncLink.call_id == call_id, SyncLink.action == ACTION)
            .values(written=written)
        )
        s.commit()


def merge_description(current: str | None, ours_before: str | None, ours_now: str) -> str:
    """Replace the text we wrote last time with the new text, keeping everything else."""
    current = current or ""
    if not current or current == ours_before:
        return ours_now
    if ours_before and ours_before in current:
        return current.replace(ours_before, ours_now, 1)
    return f"{current.rstrip()}\n\n{ours_now}"  # ours was edited away: add it back below


async def _find_caller(ctx: Context, job: Job, stored: Stored) -> Decision:
    settings = ctx.settings
    e164 = stored.e164
    if not e164:
        return Decision(None)
    decision = await ctx.caller(e164)
    if decision.match is not None or decision.needs_review:
        return decision
    if settings.create_unknown_callers == "none":
        return decision
    # A new number: create its Lead or Contact once, even when two calls race (Salesforce's
    # search index lags, so the second would not find the first one's record).
    async with creation_lock(ctx.engine, e164):
        decision = await ctx.caller(e164)  # the local index sees what another worker created
        if decision.match is not None or decision.needs_review:
            return decision
        sobject = "Lead" if settings.create_unknown_callers == "lead" else "Contact"
        fields: dict[str, Any] = {"LastName": f"Caller {e164}", "Phone": e164}
        if sobject == "Lead":
            fields["Company"] = "Unknown (Aircall caller)"
            fields["LeadSource"] = "Phone Inquiry"
        record_id, duplicate = await ctx.create_or_match(sobject, fields)
        if duplicate is None:
            await ctx.record(job, "salesforce", f"create {sobject}", fields, {"id": record_id})
            match = Match(sobject, record_id, fields["LastName"])
        else:
            await ctx.record(job, "salesforce", f"create {sobject}", fields, linked(duplicate))
            match = Match(duplicate.sobject, record_id, "")
        await ctx.db(remember_caller, ctx.engine, e164, match)
        return Decision(match)


async def _send(ctx: Context, job: Job, action: str, sent: Any, request: Awaitable[T]) -> T:
    """A Salesforce request whose payload and answer go on the call's timeline."""
    try:
        result = await request
    except Exception as exc:
        await ctx.record(job, "salesforce", action, sent, getattr(exc, "body", str(exc)), False)
        if isinstance(exc, RemoteRejected) and action.endswith(" Task"):
            rows = await ctx.db(mapping_store.mapping_rows, ctx.engine, "Task")
            named = mapping_store.name_rows(exc, rows)
            if named is not exc:
                raise named from exc
        raise
    await ctx.record(job, "salesforce", action, sent, result if result is not None else "ok")
    return result


async def _upsert_task(
    ctx: Context, job: Job, external: str, call_id: int, fields: dict[str, Any]
) -> str:
    """The call's Task by upsert on the call id: a retry after a lost answer finds the same
    Task. When it exists already, Salesforce refuses its create-only fields (``TaskSubtype``):
    they were set when it was made, so it is written once more without them."""
    key = str(call_id)
    try:
        return await _send(
            ctx, job, "upsert Task", fields, ctx.upsert("Task", external, key, fields)
        )
    except RemoteRejected as exc:
        refused = _refused_fields(exc)
        if exc.error_code != "INVALID_FIELD_FOR_INSERT_UPDATE" or not refused <= NOT_UPDATEABLE:
            raise
    kept = {name: value for name, value in fields.items() if name not in NOT_UPDATEABLE}
    return await _send(ctx, job, "upsert Task", kept, ctx.upsert("Task", external, key, kept))


def _errors(exc: RemoteRejected) -> list[dict[str, Any]]:
    return [e for e in exc.body if isinstance(e, dict)] if isinstance(exc.body, list) else []


def _refused_fields(exc: RemoteRejected) -> set[str]:
    return {str(name) for error in _errors(exc) for name in error.get("fields") or []}


async def _with_media(ctx: Context, job: Job, call: dict[str, Any]) -> dict[str, Any]:
    """The call as Aircall has it now: ``call.ended`` can come before the recording is ready.

    Fetched at most once per run, and used for this run only: the intake alone decides which
    snapshot is the newest (by webhook time), and a later webhook brings the link anyway.
    Aircall refusing (the call deleted, say) logs the call with what the webhook said.
    """
    try:
        fetched = await ctx.aircall.get_call(call["id"])
    except RemoteError as exc:
        await ctx.record(job, "aircall", "get call", {"id": call["id"]}, exc.body, False)
        if isinstance(exc, RemoteRejected):
            return call
        raise
    media = {key: fetched.get(key) for key in ("recording", "voicemail", "asset")}
    await ctx.record(job, "aircall", "get call", {"id": call["id"]}, media)
    # Aircall's answer wins, except where it is empty: its GET leaves the contact out.
    return {**call, **{key: value for key, value in fetched.items() if value is not None}}


def _scope(
    call: dict[str, Any],
    caller: str | None,
    owner: str | None,
    ai_summary: str | None,
    *,
    region: str,
    zone: str,
    call_url: str,
) -> Scope:
    """What the Task mapping reads: the scope an automation on the call's events sees, plus
    the matched record's name (``call_subject``) and the agent's Salesforce User."""
    contact = call.get("contact") or {}
    dialer = fieldmap.dialer_values(
        call,
        contact=contact,
        ai_summary=ai_summary,
        region=region,
        caller=caller,
        call_url=call_url,
    )
    dialer[fieldmap.AGENT_OWNER] = owner
    return Scope(dialer=dialer, call=call, contact=contact, event=call, zone=zone)


async def log_call(ctx: Context, job: Job) -> dict[str, Any]:
    settings = ctx.settings
    call_id = job.call_id
    assert call_id is not None  # noqa: S101  (log_call jobs always carry one)
    stored = await ctx.db(_load, ctx, call_id, job.id)
    call = stored.snapshot
    kind = call_type(call)
    if not stored.ended and (kind != "answered" or settings.task_logged_at == "end"):
        return {"waiting": "call.ended"}
    if stored.later_run_due:
        # call.ended came in as this run began: the run it asked for, after the grace
        # (TASK_LOG_DELAY_SECONDS), writes the Task with the comments and tags that follow.
        return {"waiting": "the grace after call.ended"}
    final_status = getattr(settings, f"log_{kind}")
    if not final_status:
        return {"skipped": f"{kind} calls are not logged (LOG_{kind.upper()})"}
    mapping = await ctx.db(mapping_store.load_mapping, ctx.engine, "Task")
    if (
        stored.ended
        and kind == "answered"
        and not (call.get("recording") or call.get("voicemail") or call.get("asset"))
        and fieldmap.reads(mapping, fieldmap.MEDIA_SOURCES)
    ):
        call = await _with_media(ctx, job, call)
    decision = await _find_caller(ctx, job, stored)
    if decision.needs_review:
        return {"review": [c["id"] for c in decision.candidates]}
    if decision.match is None and settings.log_only_matched:
        return {"skipped": "no Salesforce record has this number (LOG_ONLY_MATCHED)"}
    owner = None
    if stored.agent_email and fieldmap.reads(mapping, (fieldmap.AGENT_OWNER,)):
        name = (call.get("user") or {}).get("name")
        owner = await ctx.sf(
            lambda: agent_user(
                ctx.engine,
                ctx.salesforce,
                stored.agent_email,
                max_age=settings.caller_cache_seconds,
                name=name,
            )
        )
    zone = await ctx.sf(ctx.org_zone)

    def fields_for(match: Match | None) -> dict[str, Any]:
        scope = _scope(
            call,
            match.name if match else None,
            owner,
            stored.ai_summary,
            region=settings.default_region,
            zone=zone,
            call_url=settings.aircall_call_url,
        )
        return task_fields(
            fieldmap.apply_mapping(mapping, scope),
            call_id,
            match,
            status=final_status if stored.ended else LIVE_STATUS,
        )

    gone = decision.match
    try:
        return await _write_task(ctx, job, call_id, stored, fields_for(gone))
    except RemoteRejected as exc:
        if gone is None or exc.error_code not in GONE_CODES or not _refused_fields(exc) & WHO:
            raise
        because = exc.error_code
    # The record was deleted, merged or converted since it was matched: use the one that took
    # its place (remembered for the number), then write once more.
    policy = Policy.from_settings(settings)
    decision = await ctx.sf(
        lambda: heal(
            ctx.engine,
            ctx.salesforce,
            stored.e164,
            gone,
            region=settings.default_region,
            policy=policy,
        )
    )
    now = decision.match
    await ctx.record(
        job,
        "salesforce",
        "find the record in place of a gone one",
        {"gone": f"{gone.sobject} {gone.id}", "because": because},
        {"now": f"{now.sobject} {now.id}" if now else "no record has the number"},
    )
    return await _write_task(ctx, job, call_id, stored, fields_for(now))


async def _write_task(
    ctx: Context, job: Job, call_id: int, stored: Stored, fields: dict[str, Any]
) -> dict[str, Any]:
    """Create the call's Task (once, whatever happened before) or bring it up to date."""
    settings = ctx.settings
    task_id, written = stored.task_id, stored.written
    external = settings.task_external_id_field
    if task_id is None and external:
        task_id = await _upsert_task(ctx, job, external, call_id, fields)
        await ctx.db(_link, ctx, call_id, task_id, fields)
        return {"action": ACTION, "sobject": "Task", "id": task_id, "upserted_on": external}
    if task_id is None and job.attempts > 1:
        # An earlier attempt may have created the Task and lost the answer (timeout, kill).
        row = await _send(
            ctx,
            job,
            "find Task by CallObject",
            str(call_id),
            ctx.find("Task", "CallObject", str(call_id), ("Id", "Description")),
        )
        if row:
            task_id, written = row["Id"], {"Description": row.get("Description")}
            await ctx.db(_link, ctx, call_id, task_id, written)
    if task_id is None:
        task_id = await _send(ctx, job, "create Task", fields, ctx.create("Task", fields))
        await ctx.db(_link, ctx, call_id, task_id, fields)
        return {"action": ACTION, "sobject": "Task", "id": task_id, "created": True}
    changes = {
        key: value
        for key, value in fields.items()
        if key not in NOT_UPDATEABLE and written.get(key) != value
    }
    try:
        if "Description" in changes:
            current = await ctx.sf(_description, ctx.salesforce, task_id)
            changes["Description"] = merge_description(
                current, written.get("Description"), str(fields["Description"])
            )
        if changes:
            await _send(ctx, job, "update Task", changes, ctx.update("Task", task_id, changes))
            await ctx.db(_save_written, ctx, call_id, {**written, **fields})
    except RemoteRejected as exc:
        if exc.error_code not in TASK_GONE or _refused_fields(exc):  # not a record it names
            raise
        # Someone deleted the call's Task in Salesforce: the call gets a new one.
        await ctx.record(job, "salesforce", "Task deleted in Salesforce", task_id, exc.body)
        await ctx.db(_unlink, ctx, call_id)
        new_id = await _send(ctx, job, "create Task", fields, ctx.create("Task", fields))
        await ctx.db(_link, ctx, call_id, new_id, fields)
        return {
            "action": ACTION,
            "sobject": "Task",
            "id": new_id,
            "created": True,
            "replaced": task_id,
        }
    return {"action": ACTION, "sobject": "Task", "id": task_id, "created": False}


def _description(sf: SalesforceClient, task_id: str) -> str | None:
    """The Task's Description as people left it; None where the integration user cannot see
    it (``ctx.update`` then leaves it out too)."""

    def read() -> str | None:
        shown = access.visible(sf, "Task", ["Description"])
        return sf.get("Task", task_id, shown).get("Description") if shown else None

    return access.retry_once(sf, read, "Task")


def pick_record(engine: Engine, e164: str, match: Match) -> int:
    """A person chose the record for a number that matched several: remember the choice for
    the number and log its calls that were waiting. Returns how many calls were queued."""
    remember_caller(engine, e164, match, pinned=True)
    with Session(engine) as s:
        waiting = s.exec(
            select(Call.id).where(
                Call.e164 == e164,
                ~select(SyncLink.id)
                .where(SyncLink.call_id == Call.id, SyncLink.action == ACTION)
                .exists(),
            )
        ).all()
        for call_id in waiting:
            queue.enqueue(s, kind=LOG_CALL, key=f"{LOG_CALL}:{call_id}", call_id=call_id)
        s.commit()
    return len(waiting)
