"""What an agent does from the dashboard, as durable jobs at live priority.

- A disposition and a note go to Aircall as a tag and a comment, never straight to Salesforce:
  Aircall then sends ``call.tagged`` and ``call.commented`` and the call takes the same path as
  if the agent had used the Aircall phone (its Task, the automations).
- "Create Lead" for an unknown number makes the Lead the agent filled in (name, company,
  e-mail; pre-filled from the Aircall contact) once per number, owned by the call's agent's
  Salesforce User, puts it in the local index (pinned) and points the number's calls at it:
  those without a Task are logged, those with one are logged again, so their Task gets the new
  ``WhoId``.
- A pick among several matches is remembered at once (``calllog.pick_record``); a job then
  reads the picked record's context and moves the call's Task to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from integrations.aircall import actions
from integrations.aircall.client import AircallClient, make_http
from integrations.errors import RemoteError, RemoteRejected
from integrations.settings import Settings
from integrations.store.models import Call, CallerMatch, Job, SyncLink
from integrations.sync.callers.matching import (
    Match,
    Policy,
    agent_user,
    creation_lock,
    decide,
    linked,
)
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
# Lead field lengths in Salesforce (FirstName 40, LastName 80, Company 255, Email 80).
LEAD_LIMITS = {"first_name": 40, "last_name": 80, "company": 255, "email": 80}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass
class LeadForm:
    """The agent's "Create Lead" form: what is known about the caller, then what they typed."""

    first_name: str = ""
    last_name: str = ""
    company: str = ""
    email: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def fields(self, e164: str, owner: str | None) -> dict[str, Any]:
        """The Lead as Salesforce takes it; no OwnerId makes the integration user its owner."""
        fields: dict[str, Any] = {
            "LastName": self.last_name,
            "Company": self.company,
            "Phone": e164,
            "LeadSource": "Phone Inquiry",
        }
        optional = (("FirstName", self.first_name), ("Email", self.email))
        fields.update({name: value for name, value in optional if value})
        if owner:
            fields["OwnerId"] = owner
        return fields


def lead_defaults(engine: Engine, call_id: int) -> LeadForm:
    """The form pre-filled from the call's Aircall contact, if Aircall knows the caller."""
    with Session(engine) as s:
        call = s.get(Call, call_id)
    contact = (call.snapshot.get("contact") if call else None) or {}
    emails = [e.get("value") for e in contact.get("emails") or [] if isinstance(e, dict)]
    known = {
        "first_name": contact.get("first_name"),
        "last_name": contact.get("last_name"),
        "company": contact.get("company_name"),
        "email": next((e for e in emails if isinstance(e, str)), None),
    }
    return LeadForm(
        **{k: v[: LEAD_LIMITS[k]] if isinstance(v, str) else "" for k, v in known.items()}
    )


def read_lead_form(form: Mapping[str, Any]) -> LeadForm:
    """The agent's input, checked as Salesforce would check the Lead (errors by field)."""
    lead = LeadForm(**{k: str(form.get(k) or "").strip() for k in LEAD_LIMITS})
    if not lead.last_name:
        lead.errors["last_name"] = "Required: Salesforce needs a Last Name on every Lead."
    if not lead.company:
        lead.errors["company"] = "Required: Salesforce needs a Company on every Lead."
    if lead.email and not EMAIL.fullmatch(lead.email):
        lead.errors["email"] = "Not an e-mail address (name@example.com)."
    labels = {"first_name": "First name", "last_name": "Last name", "company": "Company"}
    for key, limit in LEAD_LIMITS.items():
        if len(getattr(lead, key)) > limit and key not in lead.errors:
            lead.errors[key] = f"{labels.get(key, 'E-mail')} takes at most {limit} characters."
    return lead


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


def request_lead(engine: Engine, call_id: int, e164: str, lead: LeadForm) -> None:
    """Queue "Create Lead" for the call's number (one job per number at a time)."""
    typed = {k: getattr(lead, k) for k in LEAD_LIMITS}
    with Session(engine) as s:
        queue.enqueue(
            s,
            kind=CREATE_LEAD,
            key=f"{CREATE_LEAD}:{e164}",
            call_id=call_id,
            payload={"e164": e164, "lead": typed},
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
    created, owner = False, None
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
            owner = await _agent_owner(ctx, job.call_id)
            # A job queued before the form existed has no "lead": Salesforce then says what is
            # missing, and the job parks with that.
            fields = LeadForm(**job.payload.get("lead") or {}).fields(e164, owner)
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
        **({"owner": owner} if created else {}),
    }


def _call_agent(engine: Engine, call_id: int | None) -> str | None:
    with Session(engine) as s:
        call = s.get(Call, call_id) if call_id is not None else None
    return call.agent_email if call else None


async def _agent_owner(ctx: Context, call_id: int | None) -> str | None:
    """The Salesforce User of the call's agent (None: the integration user will own it)."""
    email = await ctx.db(_call_agent, ctx.engine, call_id)
    if not email:
        return None
    max_age = ctx.settings.caller_cache_seconds
    return await ctx.sf(lambda: agent_user(ctx.engine, ctx.salesforce, email, max_age=max_age))


def lead_owner_missing(engine: Engine, e164: str) -> bool:
    """Whether the number's Lead, made from the dashboard, went to the integration user
    because the agent has no Salesforce User: the card says so."""
    with Session(engine) as s:
        job = s.exec(
            select(Job)
            .where(Job.dedupe_key == f"{CREATE_LEAD}:{e164}", Job.status == "done")
            .order_by(col(Job.id).desc())
        ).first()
    result = (job.result or {}) if job else {}
    return bool(result.get("created")) and "owner" in result and result["owner"] is None


async def refresh_context(ctx: Context, job: Job) -> dict[str, Any]:
    """After a pick: read the picked record's context for the card."""
    e164 = job.payload["e164"]
    match = await ctx.db(_current, ctx.engine, e164, Policy.from_settings(ctx.settings))
    if match is None:
        return {"skipped": "no record for the number"}
    await caller_context_for_card(ctx, job, e164, match)
    return {"sobject": match.sobject, "id": match.id}
