"""What an agent does from the dashboard, as durable jobs at live priority.

- A disposition and a note go to Aircall as a tag and a comment, never straight to Salesforce:
  Aircall then sends ``call.tagged`` and ``call.commented`` and the call takes the same path as
  if the agent had used the Aircall phone (its Task, the automations).
- "Create Lead" for an unknown number makes the Lead once per number, puts it in the local
  index (pinned) and points the number's calls at it: those without a Task are logged, those
  with one are logged again, so their Task gets the new ``WhoId``.
- A pick among several matches is remembered at once (``calllog.pick_record``); a job then
  reads the picked record's context and moves the call's Task to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from integrations.aircall import actions
from integrations.aircall.client import AircallClient, make_http
from integrations.errors import RemoteError, RemoteRejected
from integrations.settings import Settings
from integrations.store.models import Call, CallerMatch, Job, SyncLink
from integrations.sync.callers.matching import Match, Policy, creation_lock, decide, linked
from integrations.sync.calls import calllog
from integrations.sync.calls.context_card import (
    forget_context,
    store_tags,
    tags,
    tags_age,
)
from integrations.sync.calls.insight_card import caller_context_for_card
from integrations.sync.jobs import budget, queue
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import AGENT_DISPOSITION, CALLER_CONTEXT, CREATE_LEAD, LOG_CALL

log = logging.getLogger(__name__)

TAG_COLOR = "#2f6fdf"  # Aircall requires one for a new tag
TAGS_MAX_AGE = 300.0  # seconds the cached tag list is used before Aircall is asked again
MAX_TAG = 255
MAX_NOTE = 5000
LEAD_COMPANY = "Unknown (Aircall caller)"


# -- requests (called by the web tier, inside its own transaction) ---------------------------


def request_disposition(engine: Engine, call_id: int, tag: str, note: str) -> None:
    """Queue the tag and note for the call; the same request twice is one job."""
    tag, note = tag.strip()[:MAX_TAG], note.strip()[:MAX_NOTE]
    digest = hashlib.sha256(f"{tag}\0{note}".encode()).hexdigest()[:16]
    with Session(engine) as s:
        queue.enqueue(
            s,
            kind=AGENT_DISPOSITION,
            key=f"{AGENT_DISPOSITION}:{call_id}:{digest}",
            call_id=call_id,
            payload={"tag": tag, "note": note},
        )
        s.commit()


def request_lead(engine: Engine, call_id: int, e164: str) -> None:
    """Queue "Create Lead" for the call's number (one job per number at a time)."""
    with Session(engine) as s:
        queue.enqueue(
            s,
            kind=CREATE_LEAD,
            key=f"{CREATE_LEAD}:{e164}",
            call_id=call_id,
            payload={"e164": e164},
        )
        s.commit()


def pick(engine: Engine, call_id: int, e164: str, match: Match) -> None:
    """Remember the agent's pick for the number, log its waiting calls, and queue a job that
    reads the record's context and moves this call's Task (if it has one) to the pick."""
    calllog.pick_record(engine, e164, match)
    forget_context(engine, e164)
    with Session(engine) as s:
        queue.enqueue(
            s,
            kind=CALLER_CONTEXT,
            key=f"{CALLER_CONTEXT}:{call_id}",
            call_id=call_id,
            payload={"e164": e164},
        )
        if _has_task(s, call_id):
            queue.enqueue(s, kind=LOG_CALL, key=f"{LOG_CALL}:{call_id}", call_id=call_id)
        s.commit()


def _has_task(s: Session, call_id: int) -> bool:
    link = select(SyncLink.id).where(SyncLink.call_id == call_id, SyncLink.action == calllog.ACTION)
    return s.exec(link).first() is not None


def has_match(engine: Engine, e164: str) -> bool:
    with Session(engine) as s:
        cached = s.get(CallerMatch, e164)
    return cached is not None and bool(cached.matches)


# -- the company's tags ----------------------------------------------------------------------


def aircall_client(settings: Settings, engine: Engine) -> AircallClient:
    """An Aircall client spending the shared request budget (as the worker's does)."""

    async def spend() -> float:
        return await asyncio.to_thread(budget.take, engine, "aircall", settings.aircall_rate_limit)

    async def hold(until: float) -> None:
        await asyncio.to_thread(budget.block_until, engine, "aircall", until)

    return AircallClient(make_http(settings, engine=engine), spend, hold)


async def company_tags(settings: Settings, engine: Engine) -> list[str]:
    """Aircall's tag names, from the cache while it is fresh; a stale list beats none."""
    age = await asyncio.to_thread(tags_age, engine)
    if age is None or age > TAGS_MAX_AGE:
        client = aircall_client(settings, engine)
        try:
            await asyncio.to_thread(store_tags, engine, await client.list_tags())
        except RemoteError as exc:
            log.warning("aircall.tags_unavailable", extra={"error": str(exc)[:200]})
        finally:
            await client.aclose()
    return await asyncio.to_thread(tags, engine)


async def _tag_id(ctx: Context, job: Job, name: str) -> int:
    """The id of the company's tag ``name`` (compared without case), made if missing."""
    listed = await ctx.aircall.list_tags()
    await ctx.db(store_tags, ctx.engine, listed)
    wanted = name.casefold()
    found = next((t for t in listed if str(t.get("name", "")).casefold() == wanted), None)
    if found is not None:
        return int(found["id"])
    body = {"name": name, "color": TAG_COLOR}
    try:
        tag = await ctx.aircall.create_tag(name, TAG_COLOR)
    except RemoteRejected as exc:
        await ctx.record(job, "aircall", "create tag", body, exc.body, ok=False)
        raise
    await ctx.record(job, "aircall", "create tag", body, {"id": tag["id"]})
    return int(tag["id"])


# -- job handlers ----------------------------------------------------------------------------


async def set_disposition(ctx: Context, job: Job) -> dict[str, Any]:
    """Tag the call and comment on it in Aircall (idempotent: a tag is added once, a note
    already on the call is not posted again)."""
    call_id = job.call_id
    assert call_id is not None  # noqa: S101  (disposition jobs always carry one)
    tag, note = job.payload.get("tag") or "", job.payload.get("note") or ""
    result: dict[str, Any] = {}
    if tag:
        tag_id = await _tag_id(ctx, job, tag)
        sent = {"tags": [tag_id]}
        try:
            await ctx.aircall.tag_call(call_id, [tag_id])
        except RemoteError as exc:
            await ctx.record(job, "aircall", "tag call", sent, exc.body, ok=False)
            raise
        await ctx.record(job, "aircall", "tag call", sent, {"tag": tag})
        result["tag"] = tag
    if note:
        try:
            outcome = await actions.add_comments(ctx.aircall, call_id, [note])
        except RemoteError as exc:
            await ctx.record(job, "aircall", "comment", note, exc.body, ok=False)
            raise
        received = {"posted": outcome.posted, "unplaced": outcome.unplaced}
        await ctx.record(job, "aircall", "comment", note, received, ok=not outcome.unplaced)
        result.update(received)
    return result


def _relog(engine: Engine, e164: str) -> int:
    """Queue the Task sync of the number's calls that already have a Task (new ``WhoId``)."""
    with Session(engine) as s:
        logged = s.exec(
            select(Call.id).where(
                Call.e164 == e164,
                select(SyncLink.id)
                .where(SyncLink.call_id == Call.id, SyncLink.action == calllog.ACTION)
                .exists(),
            )
        ).all()
        for call_id in logged:
            queue.enqueue(s, kind=LOG_CALL, key=f"{LOG_CALL}:{call_id}", call_id=call_id)
        s.commit()
    return len(logged)


def _current(engine: Engine, e164: str, policy: Policy) -> Match | None:
    with Session(engine) as s:
        cached = s.get(CallerMatch, e164)
    return decide(cached.matches, policy, cached.pinned).match if cached else None


async def create_lead(ctx: Context, job: Job) -> dict[str, Any]:
    """The Lead for an unknown number, made once even if two agents click at once."""
    e164 = job.payload["e164"]
    policy = Policy.from_settings(ctx.settings)
    created = False
    async with creation_lock(ctx.engine, e164):  # the same lock calllog's auto-create takes
        match = await ctx.db(_current, ctx.engine, e164, policy)
        if match is None and job.attempts > 1:
            # An earlier attempt may have created it and lost the answer (SOQL sees it at once).
            rows = await ctx.sf(
                ctx.salesforce.query,
                "SELECT Id, Name FROM Lead WHERE Phone = {} AND IsConverted = false "
                "ORDER BY CreatedDate DESC LIMIT 1",
                e164,
            )
            if rows:
                match = Match("Lead", rows[0]["Id"], rows[0].get("Name") or "")
        if match is None:
            fields = {
                "LastName": f"Caller {e164}",
                "Company": LEAD_COMPANY,
                "Phone": e164,
                "LeadSource": "Phone Inquiry",
            }
            try:
                lead_id, duplicate = await ctx.create_or_match("Lead", fields)
            except RemoteError as exc:
                await ctx.record(job, "salesforce", "create Lead", fields, exc.body, ok=False)
                raise
            if duplicate is None:
                await ctx.record(job, "salesforce", "create Lead", fields, {"id": lead_id})
                match, created = Match("Lead", lead_id, fields["LastName"]), True
            else:
                await ctx.record(job, "salesforce", "create Lead", fields, linked(duplicate))
                match = Match(duplicate.sobject, lead_id, "")
        waiting = await ctx.db(calllog.pick_record, ctx.engine, e164, match)
    relogged = await ctx.db(_relog, ctx.engine, e164)
    await caller_context_for_card(ctx, job, e164, match)
    return {
        "sobject": match.sobject,
        "id": match.id,
        "created": created,
        "logged": waiting,
        "relogged": relogged,
    }


async def refresh_context(ctx: Context, job: Job) -> dict[str, Any]:
    """After a pick: read the picked record's context for the card."""
    e164 = job.payload["e164"]
    match = await ctx.db(_current, ctx.engine, e164, Policy.from_settings(ctx.settings))
    if match is None:
        return {"skipped": "no record for the number"}
    await caller_context_for_card(ctx, job, e164, match)
    return {"sobject": match.sobject, "id": match.id}
