"""The Aircall rate budget is one count in the database, shared by every worker."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from integrations.sync.jobs import budget


def test_budget_grants_the_limit_per_minute_across_threads(engine: Engine) -> None:
    now = 1_800_000_000.0  # the start of a minute
    granted: list[float] = []
    lock = threading.Lock()

    def spend() -> None:
        for _ in range(20):
            wait = budget.take(engine, "aircall", 50, now=now + 1)
            with lock:
                granted.append(wait)

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(0.0) == 50
    assert all(wait == 59.0 for wait in granted if wait)
    assert budget.take(engine, "aircall", 50, now=now + 60) == 0.0  # the next minute


def test_a_reset_time_from_the_service_holds_every_worker(engine: Engine) -> None:
    now = 1_800_000_000.0
    budget.block_until(engine, "aircall", now + 30)
    assert budget.take(engine, "aircall", 120, now=now) == 30.0
    assert budget.take(engine, "aircall", 120, now=now + 31) == 0.0
