"""Figures for the managers' charts: calls per disposition, agent and day; sync failures per day;
the org's Salesforce API requests today against its limit."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from integrations.store.db import is_postgres
from integrations.store.models import AgentUser, ApiUsage, Call, Job

NO_DISPOSITION = "(none)"
NO_AGENT = "(no agent)"
MAX_DAYS = 366


@dataclass
class Charts:
    days: list[str]
    calls_per_day: list[int]
    failures_per_day: list[int]
    per_disposition: dict[str, int]
    per_agent: dict[str, int]
    api_used: int
    api_max: int
    api_updated_at: float | None


def _day(timestamp: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(timestamp, UTC).astimezone(tz).date()


def charts(
    engine: Engine,
    *,
    zone: str,
    days: int = 14,
    first: date | None = None,
    last: date | None = None,
    now: float | None = None,
) -> Charts:
    """The days from ``first`` to ``last`` (the pages' time zone), by default the last ``days``
    days, today included; at most ``MAX_DAYS``."""
    tz = ZoneInfo(zone)
    last = last or _day(now if now is not None else time.time(), tz)
    first = first or last - timedelta(days=days - 1)
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    since = int(datetime.combine(first, datetime.min.time(), tz).timestamp())
    until = int(datetime.combine(last + timedelta(days=1), datetime.min.time(), tz).timestamp())
    labels = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    in_range = (col(Call.started_at) >= since, col(Call.started_at) < until)
    with Session(engine) as s:
        started = s.exec(select(Call.started_at).where(*in_range)).all()
        failed = s.exec(
            select(Job.finished_at).where(
                Job.status == "failed", col(Job.finished_at) >= since, col(Job.finished_at) < until
            )
        ).all()
        names = {row.email: row.name for row in s.exec(select(AgentUser)) if row.name}
        per_agent: dict[str, int] = {}
        for email, count in s.exec(
            select(Call.agent_email, func.count())
            .where(*in_range)
            .group_by(Call.agent_email)
            .order_by(func.count().desc(), Call.agent_email)
        ).all():
            name = names.get(email or "") or email or NO_AGENT
            per_agent[name] = per_agent.get(name, 0) + count
        per_disposition = _dispositions(s, engine, since, until)
        usage = s.get(ApiUsage, "salesforce")
    calls_per_day = Counter(_day(t, tz) for t in started if t is not None)
    failures_per_day = Counter(_day(t, tz) for t in failed if t is not None)
    return Charts(
        days=[d.isoformat() for d in labels],
        calls_per_day=[calls_per_day[d] for d in labels],
        failures_per_day=[failures_per_day[d] for d in labels],
        per_disposition=per_disposition,
        per_agent=per_agent,
        api_used=usage.used if usage else 0,
        api_max=usage.max if usage else 0,
        api_updated_at=usage.updated_at if usage else None,
    )


def _dispositions(s: Session, engine: Engine, since: int, until: int) -> dict[str, int]:
    """Calls per tag name (a call with two tags counts for both), untagged calls apart."""
    if is_postgres(engine):
        sql = (
            "SELECT COALESCE(t.value ->> 'name', :none) AS name, COUNT(*) FROM calls "
            "LEFT JOIN LATERAL json_array_elements(CASE WHEN json_typeof(calls.snapshot -> 'tags')"
            " = 'array' THEN calls.snapshot -> 'tags' ELSE '[]'::json END) AS t ON true "
            "WHERE calls.started_at >= :since AND calls.started_at < :until "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    else:
        sql = (
            "SELECT COALESCE(json_extract(t.value, '$.name'), :none) AS name, COUNT(*) FROM calls "
            "LEFT JOIN json_each(calls.snapshot, '$.tags') AS t "
            "WHERE calls.started_at >= :since AND calls.started_at < :until "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    rows = s.execute(text(sql), {"since": since, "until": until, "none": NO_DISPOSITION}).all()
    return {str(name): int(count) for name, count in rows}
