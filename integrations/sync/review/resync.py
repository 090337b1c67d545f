"""Re-syncs from review: one call's actions again, or every failed action the filters select,
queued at bulk priority with its progress kept (``ResyncBatch``) so the page can show it.

The handlers are idempotent (the Task is found by ``SyncLink`` or ``CallObject``), so a re-sync
never creates a second record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import JSON, Column, Engine, func
from sqlmodel import Field, Session, SQLModel, col, select

from integrations.store.models import Call, Job
from integrations.sync.jobs import kinds, queue
from integrations.sync.review.browse import Filters, conditions


class ResyncBatch(SQLModel, table=True):
    """The jobs one bulk re-sync put back in the queue, so its progress can be shown."""

    __tablename__ = "resync_batches"

    id: int | None = Field(default=None, primary_key=True)
    created_by: str = Field(max_length=254)
    created_at: float
    filters: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    job_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


def resync_call(engine: Engine, call_id: int) -> int:
    """Run the call's actions again (those not already queued); how many were queued."""
    with Session(engine) as s:
        ids = s.exec(
            select(Job.id).where(
                Job.call_id == call_id, queue.newest_of_key(), col(Job.status).not_in(queue.ACTIVE)
            )
        ).all()
    return sum(queue.resync(engine, job_id) for job_id in ids if job_id is not None)


def start_bulk_resync(engine: Engine, filters: Filters, zone: str, created_by: str) -> ResyncBatch:
    """Queue, at bulk priority, every failed action of the calls the filters select."""
    where = conditions(engine, filters, zone, None)
    with Session(engine) as s:
        failed = s.exec(
            select(Job.id)
            .where(
                Job.status == "failed",
                queue.newest_of_key(),
                col(Job.call_id).in_(select(Call.id).where(*where)),
            )
            .order_by(col(Job.id))
        ).all()
    queued = [job_id for job_id in failed if queue.resync(engine, job_id, kinds.BULK)]
    batch = ResyncBatch(
        created_by=created_by,
        created_at=time.time(),
        filters=filters.as_params(),
        job_ids=queued,
    )
    with Session(engine, expire_on_commit=False) as s:
        s.add(batch)
        s.commit()
    return batch


@dataclass
class Progress:
    batch_id: int
    total: int
    done: int
    failed: int

    @property
    def pending(self) -> int:
        return self.total - self.done - self.failed

    @property
    def finished(self) -> bool:
        return self.pending == 0

    @property
    def percent(self) -> int:
        return 100 if not self.total else round(100 * (self.done + self.failed) / self.total)


def batch_progress(engine: Engine, batch_id: int) -> Progress | None:
    with Session(engine) as s:
        batch = s.get(ResyncBatch, batch_id)
        if batch is None:
            return None
        counts: dict[str, int] = {}
        if batch.job_ids:
            for status, count in s.exec(
                select(Job.status, func.count())
                .where(col(Job.id).in_(batch.job_ids))
                .group_by(Job.status)
            ).all():
                counts[status] = count
        return Progress(
            batch_id, len(batch.job_ids), counts.get("done", 0), counts.get("failed", 0)
        )
