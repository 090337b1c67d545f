"""A request budget shared by every worker process, kept in the database.

Aircall allows one company 120 requests a minute, across all its integrations; two worker
processes counting in memory would each spend the whole budget.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, update
from sqlmodel import Session

from integrations.store.db import insert_ignore
from integrations.store.models import RateWindow

BLOCK = -1  # the row holding "the service told us to wait until ..."


def take(engine: Engine, name: str, limit: int, now: float | None = None) -> float:
    """Spend one request: 0.0 when granted, else the seconds to wait before asking again."""
    now = time.time() if now is None else now
    window = int(now // 60)
    with Session(engine) as s:
        block = s.get(RateWindow, (name, BLOCK))
        if block is not None and block.blocked_until > now:
            return block.blocked_until - now
        s.execute(insert_ignore(engine, RateWindow.__table__, {"name": name, "window": window}))
        granted = s.execute(
            update(RateWindow)
            .where(RateWindow.name == name, RateWindow.window == window, RateWindow.used < limit)
            .values(used=RateWindow.used + 1)
        ).rowcount
        s.commit()
    return 0.0 if granted else (window + 1) * 60 - now


def block_until(engine: Engine, name: str, until: float) -> None:
    """Stop every worker from spending until ``until`` (after a 429 with a reset time)."""
    with Session(engine) as s:
        s.execute(
            insert_ignore(
                engine, RateWindow.__table__, {"name": name, "window": BLOCK, "blocked_until": 0.0}
            )
        )
        s.execute(
            update(RateWindow)
            .where(RateWindow.name == name, RateWindow.window == BLOCK)
            .values(blocked_until=until)
        )
        s.commit()
