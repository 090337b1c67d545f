"""Calls that ended without a disposition: Aircall's mandatory tagging leaks (reloads, the
mobile app, overlapping calls), so the manager gets a list and the agent a reminder.

A call counts when it ended, was answered by an agent (a missed call has nobody to tag it) and
holds no tag at all in its newest snapshot. A tag set later (in Aircall or on the dashboard)
arrives as ``call.tagged`` and takes the call off the list.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from integrations.store.models import Call

LIMIT = 200  # rows a page shows; the count says how many there are in all


@dataclass(frozen=True)
class UntaggedCall:
    id: int
    agent_email: str
    agent_name: str | None
    direction: str
    caller: str | None  # E.164
    contact_name: str | None
    started_at: int | None
    duration: int


def _untagged() -> object:
    tags = func.coalesce(func.json_array_length(Call.snapshot["tags"]), 0)
    return (
        Call.ended.is_(True)  # type: ignore[union-attr]
        & Call.agent_email.is_not(None)  # type: ignore[union-attr]
        & Call.snapshot["answered_at"].as_integer().is_not(None)
        & (tags == 0)
    )


def _row(call: Call) -> UntaggedCall:
    snapshot = call.snapshot
    contact = snapshot.get("contact") or {}
    name = " ".join(str(p) for p in (contact.get("first_name"), contact.get("last_name")) if p)
    return UntaggedCall(
        id=call.id,
        agent_email=call.agent_email or "",
        agent_name=(snapshot.get("user") or {}).get("name"),
        direction=call.direction,
        caller=call.e164,
        contact_name=name or None,
        started_at=call.started_at,
        duration=call.duration,
    )


def untagged_calls(
    engine: Engine, *, agent: str | None = None, limit: int = LIMIT
) -> tuple[list[UntaggedCall], int]:
    """The newest untagged calls (of one agent, by email, if given) and how many there are."""
    where = _untagged()
    if agent:
        where = where & (Call.agent_email == agent.strip().lower())  # type: ignore[operator]
    with Session(engine) as s:
        total = s.exec(select(func.count()).select_from(Call).where(where)).one()
        rows = s.exec(
            select(Call)
            .where(where)
            .order_by(Call.started_at.desc(), Call.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        ).all()
    return [_row(call) for call in rows], int(total)


REMINDER_SHOWN = 5


def untagged_for_agent(
    engine: Engine, email: str, limit: int = REMINDER_SHOWN
) -> tuple[list[UntaggedCall], int]:
    """The agent's newest untagged calls, for the reminder on their dashboard, and how many
    there are in all (the reminder lists a few but counts every one)."""
    return untagged_calls(engine, agent=email, limit=limit)


def untagged_agents(engine: Engine) -> list[str]:
    """Agents with at least one untagged call (the page's filter)."""
    with Session(engine) as s:
        rows = s.exec(
            select(Call.agent_email).where(_untagged()).distinct().order_by(Call.agent_email)
        ).all()
    return [email for email in rows if email]
