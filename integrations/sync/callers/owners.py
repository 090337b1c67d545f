"""The manager's view of agent → Salesforce User mapping (``matching`` keeps the rows).

Agents come from two places: the lookups ``matching.agent_user`` recorded, and calls whose
agent was never looked up yet. An agent without a User is a warning, never a silent fall-back
to the integration user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, select

from integrations.errors import BadInput
from integrations.salesforce.client import SalesforceClient
from integrations.store.models import AgentUser, Call
from integrations.sync.callers.matching import set_agent_user

USER_ID = re.compile(r"005[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?")


@dataclass(frozen=True)
class AgentRow:
    email: str
    name: str | None
    sf_user_id: str | None
    manual: bool  # set by a manager (else found by email)
    looked_up: bool  # False: no call of theirs has needed an owner yet

    @property
    def unmapped(self) -> bool:
        return self.sf_user_id is None


@dataclass(frozen=True)
class SalesforceUser:
    id: str
    name: str
    email: str


def agents(engine: Engine) -> list[AgentRow]:
    """Every agent we know of, unmapped ones first."""
    with Session(engine) as s:
        known = {row.email: row for row in s.exec(select(AgentUser))}
        callers = s.exec(select(Call.agent_email).where(Call.agent_email.is_not(None)).distinct())  # type: ignore[union-attr]
        seen = {email for email in callers if email}
    rows = [
        AgentRow(row.email, row.name, row.sf_user_id, row.manual, True) for row in known.values()
    ]
    rows += [AgentRow(email, None, None, False, False) for email in seen - set(known)]
    return sorted(rows, key=lambda r: (not r.unmapped, r.email))


def active_users(sf: SalesforceClient) -> list[SalesforceUser]:
    """The org's active Users, offered in the picker (one query)."""
    rows = sf.query(
        "SELECT Id, Name, Email FROM User WHERE IsActive = true ORDER BY Name LIMIT 500"
    )
    return [SalesforceUser(r["Id"], r.get("Name") or "", r.get("Email") or "") for r in rows]


def map_agent(
    engine: Engine, email: str, user_id: str | None, users: list[SalesforceUser] | None
) -> None:
    """Tie ``email`` to a User id (``None`` clears it); checked against ``users`` when known."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise BadInput("not an agent's email")
    user_id = (user_id or "").strip() or None
    if user_id is not None:
        if not USER_ID.fullmatch(user_id):
            raise BadInput(f"{user_id!r} is not a Salesforce User id (they start with 005)")
        if users is not None and user_id[:15] not in {u.id[:15] for u in users}:
            raise BadInput(f"no active Salesforce User has the id {user_id}")
    set_agent_user(engine, email, user_id)
