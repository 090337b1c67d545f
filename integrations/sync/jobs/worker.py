"""The queue worker: claims jobs, runs their handler, and applies the retry decision.

The lease on a running job is kept by a heartbeat that outlives database errors (it retries
quickly until the database answers again); a handler whose lease was lost anyway stops before
its next external write (``jobs.lease``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from prometheus_client import Histogram
from sqlalchemy import Engine, update
from sqlmodel import Session

from integrations.aircall.client import AircallClient, make_http
from integrations.errors import BudgetExhausted, NotConfigured, RemoteError, RemoteRejected
from integrations.salesforce.client import Meter, SalesforceClient, current_meter
from integrations.salesforce_connection import TokenSource
from integrations.settings import Settings
from integrations.store.db import upsert
from integrations.store.models import ApiUsage, Call, Job
from integrations.sync.jobs import budget, kinds, queue, retry
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.lease import Lease, LeaseLost, check_current, current_lease

log = logging.getLogger(__name__)

Handler = Callable[[Context, Job], Awaitable[dict[str, Any]]]
# A loop that runs beside the claim loops until the event is set (polling, the outage check).
Background = Callable[[Context, asyncio.Event], Awaitable[None]]
IDLE_POLL = 0.05  # seconds between claims when the queue is empty
# The writers' one loop polls as often as the claim loops together did: a call's Task is picked
# up as soon as before.
WRITERS_POLL = IDLE_POLL / 4
ERROR_PAUSE = 1.0  # seconds to wait after the store failed us
HEARTBEAT_RETRY = 0.25  # seconds between heartbeats while the store does not answer
# A live-call job takes tens of milliseconds; a backfill page or a slow org, seconds.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def make_context(settings: Settings, engine: Engine) -> Context:
    """Both clients wired to the shared budget in ``engine``; Salesforce's tokens come from the
    environment or, without one, from the connection made on the Connections page (read when
    needed, so connecting takes effect without a restart)."""

    async def spend() -> float:
        check_current()  # before every Aircall request: a job taken over sends nothing more
        return await asyncio.to_thread(budget.take, engine, "aircall", settings.aircall_rate_limit)

    async def hold(until: float) -> None:
        await asyncio.to_thread(budget.block_until, engine, "aircall", until)

    return Context(
        engine=engine,
        settings=settings,
        salesforce=SalesforceClient(settings, TokenSource(settings, engine)),
        aircall=AircallClient(make_http(settings, engine=engine), spend, hold),
    )


class Worker:
    """``concurrency`` claim-run loops in one process, and one loop that keeps up to
    ``worker_batch_jobs`` writers running at once (the kinds whose Salesforce writes go out
    together, ``jobs.batching``); stop() lets running jobs finish.

    The writers never take the other loops' slots, so live work (insight cards) is never held
    behind a batch. ``handlers`` maps each job kind to the coroutine that runs it;
    ``integrations.sync.runtime`` wires the real ones, so this module knows no job kind.
    """

    def __init__(
        self,
        ctx: Context,
        handlers: Mapping[str, Handler],
        *,
        background: Sequence[Background] = (),
        concurrency: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.handlers = handlers
        self.background = background
        self.concurrency = concurrency or ctx.settings.worker_concurrency
        self.name = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.policy = retry.Policy(
            base=ctx.settings.retry_base_seconds, max_attempts=ctx.settings.job_max_attempts
        )
        self.writers = frozenset(name for name, kind in kinds.KINDS.items() if kind.batches_writes)
        # Jobs record no start time, so run times are measured here; registered nowhere:
        # the app serving this worker shows it on /metrics (integrations.metrics).
        self.durations = Histogram(
            "callbridge_job_duration_seconds",
            "How long the worker in this process took to run a job, from claiming it to storing"
            " its outcome, by job kind",
            ["kind"],
            registry=None,
            buckets=DURATION_BUCKETS,
        )
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(f"{self.name}/{i}")) for i in range(self.concurrency)
        ]
        if self.ctx.settings.worker_batch_jobs > 0:
            self._tasks.append(asyncio.create_task(self._writers_loop(f"{self.name}/w")))
        self._tasks += [
            asyncio.create_task(run(self.ctx, self._stopping)) for run in self.background
        ]

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ctx.aircall.aclose()
        self.ctx.salesforce.close()

    async def run_until_stopped(self) -> None:
        self.start()
        await asyncio.gather(*self._tasks)

    def _max_priority(self) -> int:
        """Hold background and bulk work once the org's daily API usage passes the threshold."""
        usage = self.ctx.salesforce.usage
        if usage.ratio >= self.ctx.settings.salesforce_api_threshold:
            return kinds.NORMAL
        return kinds.BULK

    def _claim(self, name: str, limit: int, max_priority: int, *, writers: bool) -> list[Job]:
        return queue.claim_many(
            self.ctx.engine,
            name,
            lease_seconds=self.ctx.settings.job_lease_seconds,
            max_priority=max_priority,
            limit=limit,
            only=self.writers if writers else None,
            exclude=None if writers or self.ctx.settings.worker_batch_jobs <= 0 else self.writers,
        )

    async def _loop(self, name: str) -> None:
        while not self._stopping.is_set():
            try:
                claimed = await asyncio.to_thread(
                    self._claim, name, 1, self._max_priority(), writers=False
                )
                if claimed:
                    await self.run(claimed[0])
                    continue
                pause = IDLE_POLL
            except Exception:  # the loop must outlive a database hiccup
                # A job whose outcome could not be stored keeps its lease and runs again.
                log.exception("worker.loop_error", extra={"worker": name})
                pause = ERROR_PAUSE
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    async def _writers_loop(self, name: str) -> None:
        """Keep up to ``worker_batch_jobs`` writers running; a tenth of the slots stays for
        work a call waits for, so a backfill never holds back a call that just ended."""
        slots = self.ctx.settings.worker_batch_jobs
        reserved = slots // 10
        running: set[asyncio.Task[None]] = set()
        while not self._stopping.is_set():
            pause = WRITERS_POLL
            try:
                free = slots - len(running)
                claimed: list[Job] = []
                if free > reserved:
                    claimed = await asyncio.to_thread(
                        self._claim, name, free - reserved, self._max_priority(), writers=True
                    )
                if free > len(claimed) and (free <= reserved or len(claimed) == free - reserved):
                    claimed += await asyncio.to_thread(
                        self._claim, name, free - len(claimed), kinds.NORMAL, writers=True
                    )
                for job in claimed:
                    task = asyncio.create_task(self.run(job))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if claimed and len(running) < slots:
                    continue
            except Exception:  # the loop must outlive a database hiccup
                log.exception("worker.loop_error", extra={"worker": name})
                pause = ERROR_PAUSE
            waits = [asyncio.ensure_future(self._stopping.wait()), *running]
            await asyncio.wait(waits, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
            waits[0].cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def run(self, job: Job) -> None:
        """Run one claimed job to its next state: done, queued again, or failed."""
        handler = self.handlers.get(job.kind)
        meter = Meter()
        lease = Lease(self.ctx.engine, job, self.ctx.settings.job_lease_seconds)
        tokens = current_meter.set(meter), current_lease.set(lease)
        heartbeat = asyncio.create_task(self._heartbeat(lease))
        started = time.monotonic()
        try:
            if handler is None:
                raise RemoteRejected("callbridge", None, f"no handler for job kind {job.kind!r}")
            if job.kind in self.writers:
                with self.ctx.writes.writer():
                    result = await handler(self.ctx, job)
            else:
                result = await handler(self.ctx, job)
        except LeaseLost:
            # Another worker runs it now; what this run did is on the timeline, nothing to settle.
            await asyncio.to_thread(self._account, job, meter)
            log.warning("job.lease_lost", extra={"job": job.id, "kind": job.kind})
        except Exception as exc:  # noqa: BLE001  (every failure is recorded on the job below)
            await asyncio.to_thread(self._account, job, meter)
            await asyncio.to_thread(self._failed, job, exc)
        else:
            await asyncio.to_thread(self._account, job, meter)
            await asyncio.to_thread(queue.finish, self.ctx.engine, job, result)
            log.info("job.done", extra={"job": job.id, "kind": job.kind, "call": job.call_id})
        finally:
            self.durations.labels(job.kind).observe(time.monotonic() - started)
            heartbeat.cancel()
            current_meter.reset(tokens[0])
            current_lease.reset(tokens[1])

    async def _heartbeat(self, lease: Lease) -> None:
        """Extend the lease every third of it; when the store fails, try again soon, since the
        lease runs out meanwhile. Ends when the job is found to be another worker's."""
        pause = lease.seconds / 3
        while True:
            await asyncio.sleep(pause)
            try:
                if not await asyncio.to_thread(lease.renew):
                    log.warning("job.lease_lost", extra={"job": lease.job.id})
                    return
                pause = lease.seconds / 3
            except Exception:
                log.warning("job.heartbeat_failed", extra={"job": lease.job.id}, exc_info=True)
                pause = min(HEARTBEAT_RETRY, lease.seconds / 10)

    def _failed(self, job: Job, exc: Exception) -> None:
        if isinstance(exc, RemoteError):
            code, detail = exc.error_code, queue.describe_error(exc.body)
        else:
            code, detail = type(exc).__name__, "".join(traceback.format_exception(exc))[-4000:]
        if isinstance(exc, BudgetExhausted):
            # Nothing was sent: waiting for the shared budget does not use up an attempt.
            queue.retry_later(
                self.ctx.engine, job, exc.retry_at or time.time(), code, detail, attempt_used=False
            )
            return
        if isinstance(exc, NotConfigured):
            # Nobody has connected Salesforce (or Aircall) yet: wait for it, attempts untouched,
            # the reason on the job for the manager's screen.
            queue.retry_later(
                self.ctx.engine,
                job,
                time.time() + retry.SETUP_WAIT,
                code,
                str(exc),
                attempt_used=False,
            )
            log.info("job.waiting_for_setup", extra={"job": job.id, "kind": job.kind})
            return
        run_at = retry.next_run(exc, job.attempts, time.time(), self.policy)
        if run_at is None:
            queue.park(self.ctx.engine, job, code, detail)
            log.warning(
                "job.failed",
                extra={"job": job.id, "kind": job.kind, "code": code, "error": detail[:500]},
            )
        else:
            queue.retry_later(self.ctx.engine, job, run_at, code, detail)
            log.info("job.retry", extra={"job": job.id, "code": code, "at": run_at})

    def _account(self, job: Job, meter: Meter) -> None:
        """Charge the job's Salesforce requests to its call and store the org's usage."""
        usage = self.ctx.salesforce.usage
        with Session(self.ctx.engine) as s:
            if meter.requests and job.call_id is not None:
                s.execute(
                    update(Call)
                    .where(Call.id == job.call_id)
                    .values(sf_requests=Call.sf_requests + meter.requests)
                )
            if usage.max:
                upsert(
                    s,
                    ApiUsage(
                        service="salesforce", used=usage.used, max=usage.max, updated_at=time.time()
                    ),
                )
            s.commit()
