"""Numbers that asked not to be called (Do Not Call), kept locally: outbound actions check them
without asking Salesforce."""

from __future__ import annotations

import time

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.store.automation_models import SuppressedNumber
from integrations.store.db import insert_ignore


def suppress(engine: Engine, e164: str, record_id: str | None, call_id: int | None) -> None:
    with Session(engine) as s:
        s.execute(
            insert_ignore(
                engine,
                SuppressedNumber.__table__,
                {
                    "e164": e164,
                    "record_id": record_id,
                    "call_id": call_id,
                    "reason": "DNC requested",
                    "created_at": time.time(),
                },
            )
        )
        s.commit()


def is_suppressed(engine: Engine, e164: str | None) -> bool:
    """True for a number that asked not to be called: outbound actions must leave it alone."""
    if not e164:
        return False
    with Session(engine) as s:
        return s.get(SuppressedNumber, e164) is not None
