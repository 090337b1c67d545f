"""The durable queue on SQLite and PostgreSQL: claims, leases, coalescing, parking."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine
from sqlmodel import Session, select

from integrations.store.models import Job
from integrations.sync.jobs import kinds, queue


def _enqueue(engine: Engine, key: str, priority: int = kinds.NORMAL, **kwargs: object) -> None:
    with Session(engine) as s:
        queue.enqueue(s, kind="test", key=key, priority=priority, **kwargs)
        s.commit()


def _jobs(engine: Engine) -> list[Job]:
    with Session(engine) as s:
        return list(s.exec(select(Job).order_by(Job.id)))


def test_most_urgent_job_is_claimed_first(engine: Engine) -> None:
    _enqueue(engine, "bulk", priority=kinds.BULK)
    _enqueue(engine, "normal")
    _enqueue(engine, "live", priority=kinds.LIVE)
    order = [queue.claim(engine, "w", lease_seconds=30).dedupe_key for _ in range(3)]
    assert order == ["live", "normal", "bulk"]
    assert queue.claim(engine, "w", lease_seconds=30) is None


def test_bulk_work_is_held_below_the_priority_ceiling(engine: Engine) -> None:
    _enqueue(engine, "bulk", priority=kinds.BULK)
    assert queue.claim(engine, "w", lease_seconds=30, max_priority=kinds.NORMAL) is None
    assert queue.claim(engine, "w", lease_seconds=30).dedupe_key == "bulk"


def test_same_key_while_queued_is_one_job(engine: Engine) -> None:
    _enqueue(engine, "log_call:1")
    _enqueue(engine, "log_call:1")
    jobs = _jobs(engine)
    assert len(jobs) == 1
    assert jobs[0].rerun is False


def test_same_key_while_running_runs_once_more(engine: Engine) -> None:
    _enqueue(engine, "log_call:1")
    job = queue.claim(engine, "w", lease_seconds=30)
    _enqueue(engine, "log_call:1")  # new data arrived while the job ran
    queue.finish(engine, job, {"ok": 1})
    (again,) = _jobs(engine)
    assert again.status == "queued"
    second = queue.claim(engine, "w", lease_seconds=30)
    queue.finish(engine, second, {"ok": 2})
    (done,) = _jobs(engine)
    assert (done.status, done.attempts, done.result) == ("done", 1, {"ok": 2})


def test_expired_lease_is_claimed_again_and_the_old_worker_cannot_settle_it(engine: Engine) -> None:
    _enqueue(engine, "k")
    lost = queue.claim(engine, "dead-worker", lease_seconds=0.05)
    assert queue.claim(engine, "w2", lease_seconds=30) is None  # lease still held
    deadline = time.monotonic() + 5
    job = None
    while job is None and time.monotonic() < deadline:
        job = queue.claim(engine, "w2", lease_seconds=30)
    assert job is not None
    assert job.id == lost.id
    assert job.attempts == 2
    queue.finish(engine, lost, {"by": "dead"})  # too late: no longer its job
    assert _jobs(engine)[0].status == "running"
    queue.finish(engine, job, {"by": "w2"})
    assert _jobs(engine)[0].result == {"by": "w2"}


def test_retry_later_waits_until_run_at(engine: Engine) -> None:
    _enqueue(engine, "k")
    job = queue.claim(engine, "w", lease_seconds=30)
    queue.retry_later(engine, job, time.time() + 60, "SERVER_UNAVAILABLE", "503")
    assert queue.claim(engine, "w", lease_seconds=30) is None
    (stored,) = _jobs(engine)
    assert (stored.status, stored.error_code) == ("queued", "SERVER_UNAVAILABLE")


def test_parked_job_keeps_the_error_and_can_be_resynced(engine: Engine) -> None:
    body = (
        '[{"message":"Required fields are missing: [LastName]",'
        '"errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}]'
    )
    _enqueue(engine, "k")
    job = queue.claim(engine, "w", lease_seconds=30)
    queue.park(engine, job, "REQUIRED_FIELD_MISSING", body)
    (failed,) = _jobs(engine)
    assert (failed.status, failed.last_error) == ("failed", body)
    assert queue.resync(engine, failed.id)
    assert not queue.resync(engine, failed.id)  # already queued
    assert queue.claim(engine, "w", lease_seconds=30).id == failed.id


def test_concurrent_claims_never_share_a_job(engine: Engine) -> None:
    for n in range(40):
        _enqueue(engine, f"job-{n}")
    claimed: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (job := queue.claim(engine, name, lease_seconds=30)) is not None:
            with lock:
                claimed.append(job.id)
            queue.finish(engine, job)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted({job.id for job in _jobs(engine)})
    assert len(claimed) == 40
    assert {job.status for job in _jobs(engine)} == {"done"}


def test_a_rerun_asked_for_later_waits_until_then(engine: Engine) -> None:
    _enqueue(engine, "log_call:1")
    job = queue.claim(engine, "w", lease_seconds=30)
    _enqueue(engine, "log_call:1", run_at=time.time() + 60)  # e.g. the grace after call.ended
    queue.finish(engine, job)
    (again,) = _jobs(engine)
    assert again.status == "queued"
    assert again.run_at > time.time() + 30
    assert queue.claim(engine, "w", lease_seconds=30) is None
