"""What managers review: calls with the sync state of each action, a call's timeline, re-syncs.

A call's state per action is its newest job for that action (``dedupe_key``): older rows are
history. Re-syncing puts that job back in the queue; the handlers are idempotent (the Task is
found by ``SyncLink`` or ``CallObject``), so a re-sync never creates a second record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, exists, func, text
from sqlmodel import Session, col, select

from integrations.errors import BadInput
from integrations.phones import display
from integrations.salesforce.links import record_link
from integrations.store.db import is_postgres
from integrations.store.models import Call, CallerMatch, Event, Job, JobStep, SyncLink
from integrations.sync.callers.matching import choose
from integrations.sync.jobs import kinds, queue
from integrations.sync.jobs.steps import step_words
from integrations.sync.review import causes

PAGE_SIZE = 25
_BADGES = {"queued": "queued", "running": "running", "done": "done", "failed": "failed"}
STATUSES = ("pending", "done", "failed")
CALL_STATES = {"initial": "ringing", "answered": "in progress", "done": "ended"}


@dataclass(frozen=True)
class Filters:
    """The review table's filters, as given in the page's query string."""

    agent: str = ""
    disposition: str = ""
    status: str = ""
    day_from: date | None = None
    day_to: date | None = None
    cause: str = ""  # a ``causes.Cause`` key: the calls failed for that cause

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Filters:
        status = params.get("status", "").strip()
        if status and status not in STATUSES:
            raise BadInput(f"status must be one of {', '.join(STATUSES)}")
        return cls(
            agent=params.get("agent", "").strip().lower(),
            disposition=params.get("disposition", "").strip(),
            status=status,
            day_from=_day(params.get("from", "")),
            day_to=_day(params.get("to", "")),
            cause=params.get("cause", "").strip()[:300],
        )

    def as_params(self) -> dict[str, str]:
        """The filters as query parameters (empty ones left out), for links and forms."""
        values = {
            "agent": self.agent,
            "disposition": self.disposition,
            "status": self.status,
            "from": self.day_from.isoformat() if self.day_from else "",
            "to": self.day_to.isoformat() if self.day_to else "",
            "cause": self.cause,
        }
        return {key: value for key, value in values.items() if value}


def _day(value: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"not a date (YYYY-MM-DD): {value!r}") from None


@dataclass
class JobView:
    """One action of a call: what it is, where it stands, and its link or exact error."""

    id: int
    code: str
    label: str
    state: str  # pending | waiting (done, but for now: the Task waits for the end) | done | failed
    attempts: int
    error_code: str | None
    error: str | None
    record_id: str | None = None
    record_url: str | None = None
    sobject: str | None = None
    badge: str = ""  # the state in words: queued, running, retrying, waiting for the call to end
    why: str = ""  # a failure's (or the last attempt's) cause in plain words
    retry_at: float | None = None  # a retrying job's next try


@dataclass
class CallView:
    """A call as the review table, the call page and the dashboard show it."""

    id: int
    direction: str
    state: str  # ringing | in progress | ended
    agent_email: str | None
    agent_name: str
    contact: str  # the Salesforce record's name, else Aircall's contact, else ""
    number: str
    started_at: int | None
    duration: int
    tags: list[str]
    matches: list[dict[str, Any]]  # type, id, name, url
    match_url: str | None
    jobs: list[JobView] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)  # content, posted_at, by

    @property
    def live(self) -> bool:
        """Still changing: under way, or its sync is: its page keeps asking for itself."""
        return self.active or self.sync_state == "pending"

    @property
    def sync_state(self) -> str:
        """failed if any action failed, else pending if one is under way, else done (or '')."""
        states = {job.state for job in self.jobs}
        for state in ("failed", "pending", "waiting", "done"):
            if state in states:
                return state
        return ""

    @property
    def active(self) -> bool:
        return self.state != "ended"


@dataclass
class Page:
    rows: list[CallView]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


@dataclass
class TimelineEntry:
    at: float
    kind: str  # webhook | step
    title: str
    ok: bool = True
    service: str = ""
    sent: Any = None
    received: Any = None

    @property
    def label(self) -> str:
        """A step in words, "Create a Task in Salesforce" (the action as recorded: ``title``)."""
        return step_words(self.title, self.service)


# -- queries -------------------------------------------------------------------------------


def _has_job(*conditions: Any) -> Any:
    return exists().where(Job.call_id == Call.id, *conditions)


def _status_condition(status: str) -> Any:
    failed = _has_job(Job.status == "failed", queue.newest_of_key())
    pending = _has_job(Job.status.in_(queue.ACTIVE))
    if status == "failed":
        return failed
    if status == "pending":
        return and_(~failed, pending)
    return and_(~failed, ~pending, _has_job())


def _tag_condition(engine: Engine, tag: str) -> Any:
    """The call's snapshot has a tag named ``tag`` (JSON functions of each dialect)."""
    if is_postgres(engine):
        return text(
            "jsonb_path_exists(calls.snapshot::jsonb, '$.tags[*] ? (@.name == $tag)', "
            "jsonb_build_object('tag', CAST(:tag AS text)))"
        ).bindparams(tag=tag)
    return text(
        "EXISTS (SELECT 1 FROM json_each(calls.snapshot, '$.tags') AS t "
        "WHERE json_extract(t.value, '$.name') = :tag)"
    ).bindparams(tag=tag)


def conditions(engine: Engine, filters: Filters, zone: str, agent: str | None) -> list[Any]:
    """The WHERE clauses on ``Call`` of ``filters`` (and of the agent who may see only theirs)."""
    where: list[Any] = []
    if agent is not None:  # an agent sees their own calls only
        where.append(Call.agent_email == agent)
    if filters.agent:
        where.append(Call.agent_email == filters.agent)
    if filters.disposition:
        where.append(_tag_condition(engine, filters.disposition))
    if filters.status:
        where.append(_status_condition(filters.status))
    if filters.cause:
        where.append(col(Call.id).in_(causes.call_ids(engine, filters.cause)))
    tz = ZoneInfo(zone)
    if filters.day_from:
        start = datetime.combine(filters.day_from, clock(), tz).timestamp()
        where.append(Call.started_at >= int(start))
    if filters.day_to:
        end = datetime.combine(filters.day_to + timedelta(days=1), clock(), tz).timestamp()
        where.append(Call.started_at < int(end))
    return where


def list_calls(
    engine: Engine,
    filters: Filters,
    *,
    page: int,
    zone: str,
    record_base: str,
    agent: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """One page of calls, newest first; ``agent`` limits it to that agent's calls."""
    where = conditions(engine, filters, zone, agent)
    with Session(engine) as s:
        total = s.exec(select(func.count()).select_from(Call).where(*where)).one()
        number = min(max(page, 1), max(1, math.ceil(total / size)))
        calls = s.exec(
            select(Call)
            .where(*where)
            .order_by(col(Call.started_at).desc().nulls_last(), col(Call.id).desc())
            .offset((number - 1) * size)
            .limit(size)
        ).all()
        rows = _views(s, list(calls), record_base)
    return Page(rows, total, number, size)


def call_views(engine: Engine, call_ids: list[int], record_base: str) -> list[CallView]:
    """The given calls as views, in the order given (missing ones left out)."""
    with Session(engine) as s:
        calls = {c.id: c for c in s.exec(select(Call).where(col(Call.id).in_(call_ids))).all()}
        return _views(s, [calls[i] for i in call_ids if i in calls], record_base)


def recent_calls(
    engine: Engine, record_base: str, *, agent: str | None, limit: int
) -> list[CallView]:
    """The calls a dashboard opens with: live ones first, then the most recently updated."""
    with Session(engine) as s:
        query = select(Call)
        if agent is not None:
            query = query.where(Call.agent_email == agent)
        calls = s.exec(
            query.order_by(col(Call.ended), col(Call.updated_at).desc()).limit(limit)
        ).all()
        return _views(s, list(calls), record_base)


def _views(s: Session, calls: list[Call], record_base: str) -> list[CallView]:
    """Calls with their newest job per action, links and cached caller matches (3 queries)."""
    ids = [c.id for c in calls]
    jobs: dict[int, list[Job]] = {i: [] for i in ids}
    links: dict[tuple[int, str], SyncLink] = {}
    matches: dict[str, list[dict[str, Any]]] = {}
    if ids:
        for job in s.exec(
            select(Job)
            .where(col(Job.call_id).in_(ids), queue.newest_of_key())
            .order_by(col(Job.id))
        ).all():
            jobs[job.call_id].append(job)  # type: ignore[index]
        for link in s.exec(select(SyncLink).where(col(SyncLink.call_id).in_(ids))).all():
            links[(link.call_id, link.action)] = link
        numbers = {c.e164 for c in calls if c.e164}
        if numbers:
            for cached in s.exec(select(CallerMatch).where(col(CallerMatch.e164).in_(numbers))):
                matches[cached.e164] = cached.matches
    return [_view(c, jobs[c.id], links, matches.get(c.e164 or "", []), record_base) for c in calls]


def _view(
    call: Call,
    jobs: list[Job],
    links: dict[tuple[int, str], SyncLink],
    matches: list[dict[str, Any]],
    record_base: str,
) -> CallView:
    snapshot = call.snapshot or {}
    user = snapshot.get("user") or {}
    contact = snapshot.get("contact") or {}
    chosen = choose(matches)
    aircall_name = " ".join(filter(None, [contact.get("first_name"), contact.get("last_name")]))
    tags = [str(t.get("name")) for t in snapshot.get("tags") or [] if t.get("name")]
    return CallView(
        id=call.id,
        direction=call.direction,
        state=CALL_STATES.get(call.status, call.status),
        agent_email=call.agent_email,
        agent_name=str(user.get("name") or call.agent_email or ""),
        contact=(chosen.name if chosen else "") or str(aircall_name),
        number=display(call.e164) if call.e164 else str(snapshot.get("raw_digits") or ""),
        started_at=call.started_at,
        duration=call.duration,
        tags=tags,
        matches=[
            {**match, "url": record_link(record_base, match["type"], match["id"])}
            for match in matches
        ],
        match_url=record_link(record_base, chosen.sobject, chosen.id) if chosen else None,
        jobs=[_job_view(job, links, record_base) for job in jobs],
        comments=[
            {
                "content": str(c.get("content") or ""),
                "posted_at": c.get("posted_at"),
                "by": str((c.get("posted_by") or {}).get("name") or ""),
            }
            for c in snapshot.get("comments") or []
            if isinstance(c, dict)
        ],
    )


def _job_view(job: Job, links: dict[tuple[int, str], SyncLink], record_base: str) -> JobView:
    spec = kinds.kind(job.kind)
    code, label = spec.code, spec.label
    state = "pending" if job.status in queue.ACTIVE else job.status
    if state == "done" and (job.result or {}).get("waiting"):
        state = "waiting"  # nothing made yet: the Task comes with the call's end
    view = JobView(
        id=job.id or 0,
        code=code,
        label=label,
        state=state,
        attempts=job.attempts,
        error_code=job.error_code,
        error=job.last_error,
        badge=_BADGES.get(job.status, state),
    )
    if state == "waiting":
        view.badge = "waiting for the call to end"
    elif job.status == "queued" and job.attempts and job.error_code:
        view.badge, view.retry_at = "retrying", job.run_at
    if job.error_code and (view.badge == "retrying" or state == "failed"):
        view.why = causes.explain_job(job).headline
    link = links.get((job.call_id or 0, code))
    if link is not None:
        view.record_id, view.sobject = link.record_id, link.sobject
        view.record_url = record_link(record_base, link.sobject, link.record_id)
    return view


def agents(engine: Engine) -> list[str]:
    """Agents' emails that appear on calls, for the filter."""
    with Session(engine) as s:
        rows = s.exec(
            select(Call.agent_email)
            .where(col(Call.agent_email).is_not(None))
            .distinct()
            .order_by(col(Call.agent_email))
        ).all()
    return [row for row in rows if row]


def dispositions(engine: Engine) -> list[str]:
    """Tag names used on calls, for the filter."""
    if is_postgres(engine):
        sql = (
            "SELECT DISTINCT jsonb_path_query(snapshot::jsonb, '$.tags[*].name') #>> '{}' AS name "
            "FROM calls ORDER BY name"
        )
    else:
        sql = (
            "SELECT DISTINCT json_extract(t.value, '$.name') AS name "
            "FROM calls, json_each(calls.snapshot, '$.tags') AS t ORDER BY name"
        )
    with Session(engine) as s:
        return [row[0] for row in s.execute(text(sql)).all() if row[0]]


def find_call(engine: Engine, call_id: int) -> Call | None:
    with Session(engine, expire_on_commit=False) as s:
        return s.get(Call, call_id)


def timeline(engine: Engine, call_id: int) -> list[TimelineEntry]:
    """Every webhook received for the call and every step its jobs took, oldest first."""
    with Session(engine) as s:
        received = s.exec(select(Event).where(Event.call_id == call_id)).all()
        steps = s.exec(select(JobStep).where(JobStep.call_id == call_id)).all()
    entries = [
        TimelineEntry(at=e.received_at, kind="webhook", title=e.name, service=e.source)
        for e in received
    ]
    entries += [
        TimelineEntry(
            at=step.at,
            kind="step",
            title=step.action,
            ok=step.ok,
            service=step.service,
            sent=step.sent,
            received=step.received,
        )
        for step in steps
    ]
    return sorted(entries, key=lambda entry: entry.at)


# -- re-sync ------------------------------------------------------------------------------
