"""The lease a worker holds on a running job, and what a handler must do when it is lost.

A claimed job is the claiming worker's until ``lease_until``; the heartbeat extends it while
the handler works. When the lease runs out (the worker was killed, or could not reach the
database for longer than the lease), another worker claims the job and runs it again. The first
one may still be running: it must then stop before its next external write, or both would
write. So every Salesforce or Aircall request checks the lease (in memory, free), and a
Salesforce write first confirms it in the database and extends it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import Engine

from integrations.store.models import Job
from integrations.sync.jobs import queue


class LeaseLost(Exception):
    """The job now belongs to another worker (or was settled): this run must write nothing."""


@dataclass
class Lease:
    engine: Engine
    job: Job
    seconds: float
    lost: bool = False

    def renew(self) -> bool:
        """Extend the lease in the database; False (and ``lost``) when it is no longer ours."""
        if not queue.extend(self.engine, self.job, self.seconds):
            self.lost = True
        return not self.lost

    def check(self) -> None:
        """``LeaseLost`` once the heartbeat has found the job taken."""
        if self.lost:
            raise LeaseLost(f"job {self.job.id} was claimed by another worker")

    def confirm(self) -> None:
        """Before a write that cannot be undone: still ours, for another full lease."""
        self.check()
        if not self.renew():
            self.check()


# The lease of the job this task runs (set by the worker around each handler).
current_lease: ContextVar[Lease | None] = ContextVar("current_lease", default=None)


def check_current() -> None:
    """``LeaseLost`` when the running job's lease is known to be lost (no database access)."""
    lease = current_lease.get()
    if lease is not None:
        lease.check()


def confirm_current() -> None:
    """Blocking: confirm (and extend) the running job's lease in the database."""
    lease = current_lease.get()
    if lease is not None:
        lease.confirm()
