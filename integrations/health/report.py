"""Every check, run in order; the last result kept so the top bar never waits on Salesforce.

A check is ``async (ctx) -> list[Line]``: a group of related lines (one request can answer
several). A check that fails outright becomes one problem line under its name. The number of
problems found is kept in the store (``OrgFact`` ``health_problems``), so the page's top bar,
the web process and ``callbridge doctor`` agree; each process reads it at most every
``SUMMARY_TTL`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.errors import CallbridgeError
from integrations.health import connections, fields, org
from integrations.health.lines import Line
from integrations.store.db import upsert
from integrations.store.models import OrgFact
from integrations.sync.jobs.context import Context

log = logging.getLogger(__name__)
Check = Callable[[Context], Awaitable[list[Line]]]
SUMMARY_KEY = "health_problems"
SUMMARY_TTL = 10.0  # seconds the top bar reuses what it read from the store

# The checks, in the order the page and ``callbridge doctor`` show them; True: it asks
# Salesforce, so it is not run when the Salesforce connection check failed.
CHECKS: list[tuple[str, Check, bool]] = [
    ("Salesforce connection", connections.salesforce, False),
    ("Aircall connection", connections.aircall, False),
    ("Aircall webhook", connections.aircall_webhook, False),
    ("Outbound Messages", connections.outbound, False),
    ("Field access", fields.field_access, True),
    ("Record types", org.record_types_in_use, True),
    ("Picklist values", fields.picklists, True),
    ("Duplicate rules", org.duplicate_rules, True),
    ("Agents", org.agents, False),
]
SKIPPED = "not checked: the Salesforce connection does not work (see above)"


async def run(ctx: Context) -> list[Line]:
    """Every check's lines; the count of problems is kept for the top bar."""
    lines: list[Line] = []
    connected = True
    for name, check, asks_salesforce in CHECKS:
        if asks_salesforce and not connected:
            lines.append(Line(name, SKIPPED))
            continue
        try:
            found = await check(ctx)
        except CallbridgeError as exc:
            refusal = connections.salesforce_refusal(exc) if asks_salesforce else exc
            found = [Line(name, f"not checked: {str(refusal)[:600]}")]
        if check is connections.salesforce:
            connected = found[0].ok
        lines += found
    problems = sum(not line.ok for line in lines)
    await asyncio.to_thread(_keep, ctx.engine, problems)
    log.info("health.checked", extra={"problems": problems, "lines": len(lines)})
    return lines


_seen: weakref.WeakKeyDictionary[Engine, tuple[float, int | None]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _keep(engine: Engine, problems: int) -> None:
    with Session(engine) as s:
        upsert(s, OrgFact(key=SUMMARY_KEY, value=str(problems), fetched_at=time.time()))
        s.commit()
    with _lock:
        _seen[engine] = (time.monotonic(), problems)


def problems_found(engine: Engine) -> int | None:
    """How many problems the last run found (None: Health never ran); what the top bar reads."""
    with _lock:
        seen = _seen.get(engine)
    if seen is not None and time.monotonic() - seen[0] < SUMMARY_TTL:
        return seen[1]
    with Session(engine) as s:
        fact = s.get(OrgFact, SUMMARY_KEY)
    count = int(fact.value) if fact is not None and fact.value.isdigit() else None
    with _lock:
        _seen[engine] = (time.monotonic(), count)
    return count
