"""Who is calling, and which Salesforce User is the agent: looked up once, then cached.

A call's later events, and the next call from the same number, reuse the stored answer, which
is what keeps the Salesforce requests per logged call near one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.phones import to_e164
from integrations.salesforce.client import SalesforceClient
from integrations.store.models import AgentUser, CallerMatch

PHONE_FIELDS = ("Phone", "MobilePhone")


@dataclass(frozen=True)
class Match:
    """The record a call is logged against."""

    sobject: str  # Contact | Lead
    id: str
    name: str


def confirmed(records: list[dict[str, Any]], e164: str, region: str) -> list[dict[str, Any]]:
    """Keep the search hits whose phone really is this number (SOSL matches loosely)."""
    hits = []
    for record in records:
        if record.get("attributes", {}).get("type") == "Lead" and record.get("IsConverted"):
            continue  # a converted lead is read-only; its Contact is the record to log on
        if any(to_e164(record.get(name), region) == e164 for name in PHONE_FIELDS):
            hits.append(
                {
                    "type": record["attributes"]["type"],
                    "id": record["Id"],
                    "name": record.get("Name") or "",
                }
            )
    return hits


def choose(matches: list[dict[str, Any]]) -> Match | None:
    """Contacts before Leads; within a type, Salesforce's order."""
    for sobject in ("Contact", "Lead"):
        for match in matches:
            if match["type"] == sobject:
                return Match(sobject, match["id"], match["name"])
    return None


def caller_matches(
    engine: Engine, sf: SalesforceClient, e164: str, *, region: str, max_age: float
) -> list[dict[str, Any]]:
    """The caller's records, from the cache when fresh, else one SOSL search."""
    with Session(engine) as s:
        cached = s.get(CallerMatch, e164)
        if cached is not None and time.time() - cached.fetched_at < max_age:
            return cached.matches
    matches = confirmed(sf.search_phone(e164), e164, region)
    with Session(engine) as s:
        s.merge(CallerMatch(e164=e164, matches=matches, fetched_at=time.time()))
        s.commit()
    return matches


def remember_caller(engine: Engine, e164: str, match: Match) -> None:
    """Put a record we just created in front of the search index, which lags behind writes."""
    entry = {"type": match.sobject, "id": match.id, "name": match.name}
    with Session(engine) as s:
        s.merge(CallerMatch(e164=e164, matches=[entry], fetched_at=time.time()))
        s.commit()


def agent_user(engine: Engine, sf: SalesforceClient, email: str, *, max_age: float) -> str | None:
    """The active Salesforce User with the agent's email, if exactly one exists."""
    key = email.strip().lower()
    with Session(engine) as s:
        cached = s.get(AgentUser, key)
        if cached is not None and time.time() - cached.fetched_at < max_age:
            return cached.sf_user_id
    rows = sf.query(
        "SELECT Id FROM User WHERE Email = {} AND IsActive = true LIMIT 2", email.strip()
    )
    user_id = rows[0]["Id"] if len(rows) == 1 else None  # two users share it: do not guess
    with Session(engine) as s:
        s.merge(AgentUser(email=key, sf_user_id=user_id, fetched_at=time.time()))
        s.commit()
    return user_id
