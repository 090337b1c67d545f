"""The manager's backfill button: a durable ``backfill`` job, so a restart does not lose it.

The job pages Aircall's calls of the window through ``backfill.backfill`` (idempotent: calls
already synced are left alone), so running it twice, or after a crash, is safe.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from integrations.errors import BadInput
from integrations.store.models import Job
from integrations.sync.jobs import queue
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import BACKFILL
from integrations.sync.recovery import backfill


def enqueue(engine: Engine, since: datetime, until: datetime, *, by: str) -> str:
    """Queue a backfill of [since, until] (once: the same window twice is one job)."""
    start, end = int(since.timestamp()), int(until.timestamp())
    if end < start:
        raise BadInput("the backfill window ends before it starts")
    if end > time.time() + 60:
        raise BadInput("the backfill window ends in the future")
    key = f"{BACKFILL}:{start}:{end}"
    with Session(engine) as s:
        queue.enqueue(
            s,
            kind=BACKFILL,
            key=key,
            payload={"since": start, "until": end, "by": by},
        )
        s.commit()
    return key


def latest(engine: Engine) -> Job | None:
    """The newest backfill job, to show its state next to the button."""
    with Session(engine) as s:
        return s.exec(
            select(Job).where(Job.kind == BACKFILL).order_by(Job.id.desc())  # type: ignore[union-attr]
        ).first()


async def run_backfill(ctx: Context, job: Job) -> dict[str, Any]:
    """Job: backfill the window the manager chose."""
    since = datetime.fromtimestamp(job.payload["since"], UTC)
    until = datetime.fromtimestamp(job.payload["until"], UTC)
    report = await backfill.backfill(ctx, since, until)
    await ctx.record(job, "aircall", "backfill", job.payload, report.summary())
    return {"summary": report.summary(), "queued": len(report.queued), "seen": report.seen}
