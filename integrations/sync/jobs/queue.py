"""The durable job queue: rows claimed with a lease, so a killed worker loses nothing.

Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several worker processes share the
load); on SQLite the single ``UPDATE ... RETURNING`` statement is atomic under its write lock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, Engine, bindparam, case, exists, text, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from integrations.safejson import Checked
from integrations.store.db import is_postgres
from integrations.store.json_rows import as_json, recordset
from integrations.store.models import Job
from integrations.sync.jobs import kinds

ACTIVE = ("queued", "running")


def enqueue(
    s: Session,
    *,
    kind: str,
    key: str,
    call_id: int | None = None,
    event_id: int | None = None,
    payload: dict[str, Any] | None = None,
    priority: int | None = None,
    run_at: float | None = None,
) -> None:
    """Add a job unless one with the same key is unfinished.

    A queued job will read the newest data when it runs; a running one may have read stale data,
    so it is marked to run once more (and a more urgent priority, and a later ``run_at``, are
    kept). One statement, in the
    caller's transaction: two webhooks for the same call at once cannot make two jobs. Without
    a ``priority``, the job gets its kind's (``kinds.KINDS``).
    """
    now = time.time()
    job = {
        "kind": kind,
        "dedupe_key": key,
        "call_id": call_id,
        "event_id": event_id,
        "payload": payload or _NO_PAYLOAD,
        "priority": kinds.kind(kind).priority if priority is None else priority,
        "run_at": run_at if run_at is not None else now,
        "created_at": now,
    }
    pending = s.info.get(_BATCH)
    if pending is not None:
        pending.append(job)
    else:
        s.execute(_ENQUEUE, job)


_BATCH = "queue.batch"
_NO_PAYLOAD = Checked("{}")  # most jobs: no JSON to make


@contextmanager
def batch(s: Session) -> Iterator[None]:
    """Jobs enqueued in the block are written together when it ends, with the same outcome as
    one by one (one ``executemany``: the webhook intake queues many at once)."""
    pending: list[dict[str, Any]] = []
    s.info[_BATCH] = pending
    try:
        yield
    finally:
        del s.info[_BATCH]
    if not pending:
        return
    # Several jobs of one key (a call's events in one batch) come to what the first would be
    # with the most urgent priority and the latest run_at asked, as one by one: one row each.
    merged: dict[str, dict[str, Any]] = {}
    for job in pending:
        first = merged.setdefault(job["dedupe_key"], job)
        if first is not job:
            first["priority"] = min(first["priority"], job["priority"])
            first["run_at"] = max(first["run_at"], job["run_at"])
    # By key: concurrent batches lock alike.
    jobs = sorted(merged.values(), key=lambda job: job["dedupe_key"])
    if s.get_bind().dialect.name == "postgresql":
        s.execute(_ENQUEUE_ROWS, {"rows": as_json(jobs)})  # one statement, not one a job
    else:
        s.execute(_ENQUEUE, jobs)


# The conflict target is the partial unique index.
_ON_CONFLICT = (
    "ON CONFLICT (dedupe_key) WHERE status IN ('queued', 'running') DO UPDATE SET "
    "rerun = (jobs.rerun OR jobs.status = 'running'), "
    "priority = CASE WHEN excluded.priority < jobs.priority THEN excluded.priority "
    "ELSE jobs.priority END, "
    # The job waits for the latest "not before" asked (e.g. the grace after call.ended); for a
    # running job it applies to the run that ``rerun`` asks for.
    "run_at = CASE WHEN excluded.run_at > jobs.run_at THEN excluded.run_at ELSE jobs.run_at END"
)
_INSERT = (
    "INSERT INTO jobs (kind, dedupe_key, call_id, event_id, payload, priority, status, rerun, "
    "attempts, run_at, created_at) "
)
# One statement on both databases.
_ENQUEUE = text(
    _INSERT + "VALUES (:kind, :dedupe_key, :call_id, :event_id, :payload, :priority, 'queued', "
    "false, 0, :run_at, :created_at) " + _ON_CONFLICT
).bindparams(bindparam("payload", type_=JSON))
# The same for many jobs on PostgreSQL, the rows in one JSON parameter (``json_rows``).
_ROWS = (
    ("kind", "text"),
    ("dedupe_key", "text"),
    ("call_id", "bigint"),
    ("event_id", "integer"),
    ("payload", "json"),
    ("priority", "integer"),
    ("run_at", "double precision"),
    ("created_at", "double precision"),
)
_SELECT_ROWS = "SELECT kind, dedupe_key, call_id, event_id, payload, priority, 'queued', false, 0, "
_ENQUEUE_ROWS = text(
    f"{_INSERT}{_SELECT_ROWS}run_at, created_at FROM {recordset(_ROWS)} {_ON_CONFLICT}"
)


_CLAIM = """
UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = :lease,
       worker = :worker, rerun = false
WHERE id IN (
    SELECT id FROM jobs
    WHERE ((status = 'queued' AND run_at <= :now) OR (status = 'running' AND lease_until < :now))
      AND priority <= :max_priority AND {kinds}
    ORDER BY priority, run_at, id
    LIMIT :limit {lock}
)
RETURNING id
"""


def claim(
    engine: Engine, worker: str, *, lease_seconds: float, max_priority: int = kinds.BULK
) -> Job | None:
    """Take the most urgent due job (or one whose lease ran out) for ``lease_seconds``."""
    found = claim_many(engine, worker, lease_seconds=lease_seconds, max_priority=max_priority)
    return found[0] if found else None


def claim_many(
    engine: Engine,
    worker: str,
    *,
    lease_seconds: float,
    max_priority: int = kinds.BULK,
    limit: int = 1,
    only: Collection[str] | None = None,
    exclude: Collection[str] | None = None,
) -> list[Job]:
    """Take up to ``limit`` of the most urgent due jobs (of the kinds ``only`` names, or not of
    those ``exclude`` names), most urgent first."""
    now = time.time()
    where = "kind IN :kinds" if only else "kind NOT IN :kinds" if exclude else "true"
    sql = text(
        _CLAIM.format(kinds=where, lock="FOR UPDATE SKIP LOCKED" if is_postgres(engine) else "")
    )
    params: dict[str, Any] = {
        "lease": now + lease_seconds,
        "worker": worker,
        "now": now,
        "max_priority": max_priority,
        "limit": limit,
    }
    if only or exclude:
        sql = sql.bindparams(bindparam("kinds", expanding=True))
        params["kinds"] = list(only or exclude or ())
    with Session(engine, expire_on_commit=False) as s:
        ids = [row[0] for row in s.execute(sql, params)]
        s.commit()
        if not ids:
            return []
        found = {job.id: job for job in s.exec(select(Job).where(Job.id.in_(ids)))}
    return sorted(found.values(), key=lambda job: (job.priority, job.run_at, job.id or 0))


def _owned(job: Job) -> Any:
    """Only the worker holding the lease may settle a job (a reclaimed one belongs to another)."""
    return (Job.id == job.id) & (Job.worker == job.worker) & (Job.status == "running")


def extend(engine: Engine, job: Job, lease_seconds: float) -> bool:
    """Heartbeat: keep the lease while a slow job is still working."""
    with Session(engine) as s:
        done = s.execute(
            update(Job).where(_owned(job)).values(lease_until=time.time() + lease_seconds)
        ).rowcount
        s.commit()
    return bool(done)


def finish(engine: Engine, job: Job, result: dict[str, Any] | None = None) -> None:
    """Mark done, or queue again if new data arrived while it ran (at once, or at the later
    ``run_at`` that data asked for)."""
    now = time.time()
    with Session(engine) as s:
        s.execute(
            update(Job)
            .where(_owned(job))
            .values(
                status=text("CASE WHEN rerun THEN 'queued' ELSE 'done' END"),
                attempts=text("CASE WHEN rerun THEN 0 ELSE attempts END"),  # a fresh run
                run_at=case((Job.rerun & (Job.run_at > now), Job.run_at), else_=now),
                rerun=False,
                result=result,
                error_code=None,
                last_error=None,
                lease_until=None,
                finished_at=now,
            )
        )
        s.commit()


def retry_later(
    engine: Engine,
    job: Job,
    run_at: float,
    error_code: str | None,
    error: str,
    *,
    attempt_used: bool = True,
) -> None:
    """Put a job back for another attempt at ``run_at``, keeping what went wrong.

    ``attempt_used=False`` gives the claim's attempt back (the run waited and sent nothing)."""
    with Session(engine) as s:
        s.execute(
            update(Job)
            .where(_owned(job))
            .values(
                status="queued",
                run_at=run_at,
                lease_until=None,
                error_code=error_code,
                last_error=error,
                attempts=Job.attempts if attempt_used else Job.attempts - 1,
            )
        )
        s.commit()


def park(engine: Engine, job: Job, error_code: str | None, error: str) -> None:
    """Give up: the job waits, failed, with the remote's error, until a manager re-syncs it."""
    with Session(engine) as s:
        s.execute(
            update(Job)
            .where(_owned(job))
            .values(
                status="failed",
                lease_until=None,
                error_code=error_code,
                last_error=error,
                finished_at=time.time(),
            )
        )
        s.commit()


def resync(engine: Engine, job_id: int, priority: int = kinds.NORMAL) -> bool:
    """Run a failed (or done) job again; the handler's idempotency prevents duplicates."""
    with Session(engine) as s:
        job = s.get(Job, job_id)
        if job is None or job.status in ACTIVE:
            return False
        active = s.exec(
            select(Job.id).where(Job.dedupe_key == job.dedupe_key, Job.status.in_(ACTIVE))
        ).first()
        if active is not None:
            return False
        job.status, job.run_at, job.priority, job.attempts = "queued", time.time(), priority, 0
        s.add(job)
        s.commit()
    return True


def describe_error(body: object) -> str:
    """The remote's error body as text, verbatim when it is JSON."""
    if isinstance(body, str):
        return body
    return json.dumps(body, ensure_ascii=False)


def newest_of_key() -> Any:
    """A WHERE clause: the job is the newest of its ``dedupe_key`` (the action's current state;
    older rows are history)."""
    newer = aliased(Job)
    return ~exists().where(newer.dedupe_key == Job.dedupe_key, newer.id > Job.id)
