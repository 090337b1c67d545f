"""Backfill: log the calls Aircall holds but whose webhooks never reached us.

Aircall gives up on a delivery after its retries and never logs calls retroactively, so after
an outage the calls are in Aircall and nowhere else. ``backfill`` lists ``GET /v1/calls`` in
``from``/``to`` windows and hands the finished calls to ``deliveries.accept_many`` as the
``call.ended`` delivery we missed: the same ``log_call`` job (one Task per call id) logs it.
``suggest_window`` runs when a worker starts, notices such an outage and names the window to
backfill.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from integrations.aircall import events
from integrations.aircall.events import WebhookEvent
from integrations.errors import BadInput, RemoteError, RemoteUnavailable
from integrations.store.db import upsert
from integrations.store.models import Event, Job, OrgFact, SyncLink
from integrations.sync.calls import calllog
from integrations.sync.intake import deliveries
from integrations.sync.jobs import kinds, queue, retry
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import LOG_CALL

log = logging.getLogger(__name__)

PER_PAGE = 50  # Aircall's maximum
WINDOW_CAP = 10_000  # Aircall pages at most this many calls of one query: split bigger windows
# call.ended comes about 30 s after the hang-up: a call that ended this recently is left to it.
SETTLE_SECONDS = 120
# Calls in progress when the webhooks stopped began before the last one arrived; an hour covers
# nearly all of them, and calls already synced cost only their share of a page.
IN_PROGRESS_MARGIN = 3600
KEY_PREFIX = "backfill:"  # our deliveries' keys; Aircall's are sha256 hex, so never equal
SUGGESTED = "backfill_window"  # OrgFact rows: the window offered to the manager,
COVERED = "backfill_until"  # and the end of the latest backfill (it counts as "heard from")

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class BackfillReport:
    since: int  # UNIX s, inclusive, on the calls' start time as Aircall's from/to
    until: int
    started_at: float  # when the backfill began: its jobs were created after this
    windows: int = 0  # from/to windows paged through
    splits: int = 0  # windows over the cap, halved
    pages: int = 0
    seen: int = 0
    already_synced: int = 0
    unfinished: int = 0  # still live, or ended too recently: their own webhooks will come
    invalid: int = 0  # not shaped like a call we can log (logged as warnings)
    queued: list[int] = field(default_factory=list)  # call ids handed to the pipeline

    def summary(self) -> str:
        return (
            f"{_iso(self.since)} to {_iso(self.until)}: {self.windows} windows "
            f"({self.splits} splits), {self.pages} pages, {self.seen} calls seen, "
            f"{self.already_synced} already synced, {self.unfinished} not finished, "
            f"{self.invalid} invalid, {len(self.queued)} queued"
        )


@dataclass(frozen=True)
class Window:
    """A backfill to offer: no webhook since ``since`` while Aircall shows ``calls`` calls."""

    since: datetime
    until: datetime
    calls: int

    @property
    def command(self) -> str:
        since, until = int(self.since.timestamp()), int(self.until.timestamp())
        return f"callbridge backfill --since {_iso(since)} --until {_iso(until)}"


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_call_ended(call: dict[str, Any], fetched_at: int) -> WebhookEvent:
    """A REST call as the ``call.ended`` delivery that carried it; ``BadInput`` if malformed.

    The key depends on the call id only, so a second backfill stores nothing twice. The
    timestamp is the fetch time: the REST object is the newest snapshot of the call.
    """
    data = dict(call)
    # The same facts are named differently in REST and in webhooks (contract, section 2.1).
    if "sid" in data:
        data["call_uuid"] = data.pop("sid")
    if "conference_participants" in data:
        data["participants"] = data.pop("conference_participants")
    if data.get("contact") is None:
        data.pop("contact", None)  # REST nulls it without fetch_contact; webhooks leave it out
    events._check_call(data)
    return WebhookEvent(
        event="call.ended",
        resource="call",
        timestamp=fetched_at,
        data=data,
        delivery_key=f"{KEY_PREFIX}{data['id']}",
    )


async def backfill(
    ctx: Context,
    since: datetime,
    until: datetime | None = None,
    *,
    sleep: Sleep = asyncio.sleep,
    window_cap: int = WINDOW_CAP,
) -> BackfillReport:
    """Queue every finished call that started in [since, until] and was never synced."""
    started_at = time.time()
    start = int(since.timestamp())
    end = int(until.timestamp()) if until is not None else int(started_at)
    if end < start:
        raise BadInput("the backfill window ends before it starts")
    report = BackfillReport(start, end, started_at)
    policy = retry.Policy(
        base=ctx.settings.retry_base_seconds, max_attempts=ctx.settings.job_max_attempts
    )
    pending = [(start, end)]  # a stack: the earlier half of a split is paged first
    while pending:
        low, high = pending.pop()
        page = 1
        while True:
            listed = await _list_calls(ctx, low, high, page, policy, sleep)
            report.pages += 1
            if page == 1 and listed["meta"]["total"] > window_cap and high > low:
                middle = (low + high) // 2
                pending += [(middle + 1, high), (low, middle)]
                report.splits += 1
                break
            await ctx.db(_feed, ctx, listed["calls"], report)
            if not listed["meta"].get("next_page_link") or page * PER_PAGE >= window_cap:
                if listed["meta"]["total"] > window_cap:  # over the cap within one second
                    log.warning(
                        "backfill.truncated", extra={"at": low, "calls": listed["meta"]["total"]}
                    )
                report.windows += 1
                break
            page += 1
    await ctx.db(_mark_covered, ctx.engine, start, min(end, int(started_at)))
    log.info("backfill.done", extra={"report": report.summary()})
    return report


async def _list_calls(
    ctx: Context, low: int, high: int, page: int, policy: retry.Policy, sleep: Sleep
) -> dict[str, Any]:
    """One page, waiting out the rate limit (the shared budget or a 429) as often as needed."""
    failures = 0
    while True:
        try:
            return await ctx.aircall.list_calls(start=low, end=high, page=page, per_page=PER_PAGE)
        except RemoteUnavailable as exc:
            if exc.retry_at is None or exc.status not in (None, 429):
                failures += 1  # a waiting turn of the rate limit is not a failure
            run_at = retry.next_run(exc, failures, time.time(), policy)
            if run_at is None:
                raise
            log.info("backfill.wait", extra={"seconds": round(run_at - time.time(), 1)})
            await sleep(max(0.0, run_at - time.time()))


def _feed(ctx: Context, calls: list[dict[str, Any]], report: BackfillReport) -> None:
    now = int(time.time())
    finished: list[WebhookEvent] = []
    for call in calls:
        report.seen += 1
        ended_at = call.get("ended_at")
        if call.get("status") != "done" or (
            isinstance(ended_at, int) and ended_at > now - SETTLE_SECONDS
        ):
            report.unfinished += 1
            continue
        try:
            finished.append(as_call_ended(call, now))
        except BadInput as exc:
            report.invalid += 1
            log.warning("backfill.invalid_call", extra={"call": call.get("id"), "error": str(exc)})
    synced = _synced(ctx.engine, [event.data["id"] for event in finished])
    report.already_synced += sum(event.data["id"] in synced for event in finished)
    missing = [event for event in finished if event.data["id"] not in synced]
    if not missing:
        return
    accepted = deliveries.accept_many(
        ctx.engine, missing, region=ctx.settings.default_region, priority=kinds.BULK
    )
    for event, stored in zip(missing, accepted, strict=True):
        if stored:
            report.queued.append(event.data["id"])
        else:
            report.already_synced += 1  # stored meanwhile (another backfill)


def _synced(engine: Engine, call_ids: list[int]) -> set[int]:
    """The calls that have their Task, or whose call.ended we hold (its job logs or logged it)."""
    if not call_ids:
        return set()
    with Session(engine) as s:
        linked = s.exec(
            select(SyncLink.call_id).where(
                SyncLink.call_id.in_(call_ids), SyncLink.action == calllog.ACTION
            )
        ).all()
        ended = s.exec(
            select(Event.call_id).where(Event.call_id.in_(call_ids), Event.name == "call.ended")
        ).all()
    return {*linked, *ended}


def progress(engine: Engine, report: BackfillReport) -> dict[str, int]:
    """The backfill's log_call jobs by status (queued, running, done, failed)."""
    with Session(engine) as s:
        rows = s.exec(
            select(Job.status, func.count())
            .where(Job.kind == LOG_CALL, Job.created_at >= report.started_at)
            .group_by(Job.status)
        ).all()
    return {status: count for status, count in rows}


def settled(counts: dict[str, int]) -> bool:
    return not any(counts.get(status) for status in queue.ACTIVE)


# -- outage detection ---------------------------------------------------------------------------


async def suggest_window(ctx: Context, now: float | None = None) -> Window | None:
    """At start: no webhook for ``BACKFILL_GAP_MINUTES`` while Aircall shows calls since?

    Then log the backfill command and keep the window for the manager's screen. A quiet night
    is no outage: Aircall is asked whether calls started after the last webhook.
    """
    gap = ctx.settings.backfill_gap_minutes * 60
    if gap <= 0:
        return None
    now = time.time() if now is None else now
    last = await ctx.db(_last_heard, ctx.engine)
    if last is None or now - last <= gap:
        return None  # a new installation, or webhooks are arriving
    try:
        listed = await ctx.aircall.list_calls(start=int(last) + 1, end=int(now), per_page=1)
    except RemoteError as exc:
        log.warning("backfill.check_failed", extra={"error": str(exc)[:500]})
        return None
    missed = listed["meta"]["total"]
    if not missed:
        return None
    window = Window(
        since=datetime.fromtimestamp(int(last) - IN_PROGRESS_MARGIN, UTC),
        until=datetime.fromtimestamp(int(now), UTC),
        calls=missed,
    )
    await ctx.db(_keep_suggestion, ctx.engine, window)
    log.warning(
        "backfill.suggested",
        extra={
            "calls": missed,
            "last_webhook": _iso(int(last)),
            "command": window.command,
        },
    )
    return window


def suggested_window(engine: Engine) -> Window | None:
    """The window offered to the manager, until a backfill covers it."""
    with Session(engine) as s:
        fact = s.get(OrgFact, SUGGESTED)
    if fact is None:
        return None
    stored = json.loads(fact.value)
    return Window(
        since=datetime.fromtimestamp(stored["since"], UTC),
        until=datetime.fromtimestamp(stored["until"], UTC),
        calls=stored["calls"],
    )


def _last_heard(engine: Engine) -> float | None:
    """When we last heard of Aircall's calls: the newest webhook, or the end of a backfill."""
    with Session(engine) as s:
        # Walk the primary key backwards: no scan of the whole events table at start.
        received = s.exec(
            select(Event.received_at)
            .where(Event.source == "aircall", ~Event.delivery_key.startswith(KEY_PREFIX))
            .order_by(Event.id.desc())
            .limit(1)
        ).first()
        covered = s.get(OrgFact, COVERED)
    heard = [value for value in (received, covered and float(covered.value)) if value]
    return max(heard) if heard else None


def _keep_suggestion(engine: Engine, window: Window) -> None:
    value = {
        "since": int(window.since.timestamp()),
        "until": int(window.until.timestamp()),
        "calls": window.calls,
    }
    with Session(engine) as s:
        upsert(s, OrgFact(key=SUGGESTED, value=json.dumps(value), fetched_at=time.time()))
        s.commit()


def _mark_covered(engine: Engine, start: int, end: int) -> None:
    """Remember how far backfills reached, and drop a suggestion this backfill covered."""
    with Session(engine) as s:
        covered = s.get(OrgFact, COVERED)
        if covered is None or float(covered.value) < end:
            upsert(s, OrgFact(key=COVERED, value=str(end), fetched_at=time.time()))
        suggestion = s.get(OrgFact, SUGGESTED)
        if suggestion is not None:
            offered = json.loads(suggestion.value)
            if start <= offered["since"] and offered["until"] <= end:
                s.delete(suggestion)
        s.commit()
