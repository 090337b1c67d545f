"""Which calls changed, told to the dashboards of every app process.

Only call ids travel; each process loads the call once and renders it for its own connections.

- A webhook's route publishes the call's id once its transaction has committed. On SQLite (one
  app process) that goes straight to this process's subscribers; on PostgreSQL it is a
  ``NOTIFY`` on ``callbridge_calls``, which every process ``LISTEN``s to (this one included).
- The sync jobs' outcome (a Task logged, an error parked) is written by workers that may live in
  another process: each process polls for jobs finished since it last looked.
- After the listening connection is lost and made again, notifications may have been missed:
  subscribers get ``None``, meaning "anything may have changed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Iterator

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from integrations.store.db import is_postgres
from integrations.store.models import Job

log = logging.getLogger(__name__)

CHANNEL = "callbridge_calls"
OVERLAP = 5.0  # seconds of job history read again on each poll: commits land out of order
QUEUE_SIZE = 10_000
IDS_PER_NOTIFY = 300  # call ids (at most 20 digits and a comma each) in one NOTIFY payload


def notify(s: Session, call_ids: Iterable[int]) -> None:
    """Inside a transaction that changed calls: on PostgreSQL the notification goes out to every
    process's listeners when (and only if) the transaction commits. SQLite: a no-op, the web
    process delivers in-process (``Broadcaster.deliver``) after the commit.

    One notification carries many ids (comma-separated, under PostgreSQL's 8000-byte payload).
    """
    if s.get_bind().dialect.name != "postgresql":
        return
    ids = [str(call_id) for call_id in call_ids]
    for start in range(0, len(ids), IDS_PER_NOTIFY):
        s.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": ",".join(ids[start : start + IDS_PER_NOTIFY])},
        )


class Broadcaster:
    """Fan-out of changed call ids to this process's subscribers (asyncio queues)."""

    def __init__(self, engine: Engine, *, poll_seconds: float) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.listening = asyncio.Event()  # set once LISTEN is in place (PostgreSQL)
        self._queues: set[asyncio.Queue[int | None]] = set()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[int | None]]:
        queue: asyncio.Queue[int | None] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def deliver(self, call_id: int | None) -> None:
        """Hand a change to this process's subscribers (on the event loop's thread)."""
        for queue in self._queues:
            try:
                queue.put_nowait(call_id)
            except asyncio.QueueFull:
                log.warning("live.subscriber_behind")

    async def publish(self, call_id: int) -> None:
        """Tell every process's dashboards that ``call_id`` changed (after it is committed)."""
        if is_postgres(self.engine):
            await asyncio.to_thread(self._notify, call_id)
        else:
            self.deliver(call_id)

    def _notify(self, call_id: int) -> None:
        with self.engine.connect() as connection:
            connection.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": CHANNEL, "payload": str(call_id)},
            )
            connection.commit()

    @property
    def notifies_on_commit(self) -> bool:
        """True where writers NOTIFY inside their transaction (PostgreSQL)."""
        return is_postgres(self.engine)

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._poll_jobs()))
        if is_postgres(self.engine):
            self._tasks.append(asyncio.create_task(self._listen()))
        else:
            self.listening.set()

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _listen(self) -> None:
        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        lost = False
        while not self._stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    if lost:
                        self.deliver(None)
                    async for notice in connection.notifies():
                        for call_id in notice.payload.split(","):
                            if call_id.isdigit():
                                self.deliver(int(call_id))
            except psycopg.Error as exc:
                log.warning("live.listen_lost", extra={"error": type(exc).__name__})
            self.listening.clear()
            lost = True
            await self._pause(1.0)

    def _finished_since(self, since: float) -> list[tuple[int, int, float]]:
        with Session(self.engine) as s:
            rows = s.exec(
                select(Job.id, Job.call_id, Job.finished_at).where(
                    col(Job.finished_at) > since, col(Job.call_id).is_not(None)
                )
            ).all()
        return [(job_id, call_id, at) for job_id, call_id, at in rows if job_id and call_id and at]

    async def _poll_jobs(self) -> None:
        watermark = time.time()
        seen: set[tuple[int, float]] = set()
        while not self._stopping.is_set():
            await self._pause(self.poll_seconds)
            try:
                rows = await asyncio.to_thread(self._finished_since, watermark - OVERLAP)
            except DBAPIError as exc:  # the database may be away for a while: try again
                log.warning("live.poll_failed", extra={"error": type(exc).__name__})
                continue
            changed = set()
            for job_id, call_id, at in rows:
                if (job_id, at) not in seen:
                    seen.add((job_id, at))
                    changed.add(call_id)
                watermark = max(watermark, at)
            seen = {(job_id, at) for job_id, at in seen if at > watermark - OVERLAP}
            for call_id in sorted(changed):
                self.deliver(call_id)
