"""The caller's Salesforce context: owner, company, lead status or open opportunity, last update.

The caller's search returns the record's fields (matching.CONTEXT_FIELDS), so a matched caller's
context costs no request of its own; a record known without a search (picked, or just created)
is read with one SOQL. A Contact or Account with an account costs one more for its open
opportunity, unless another number's context read that account's within the cache age. Cached
beside the caller's match, and shown twice: on the agent's dashboard and in the Aircall phone's
insight card (A06).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Engine
from sqlmodel import Field, Session, SQLModel, col, select

from integrations.phones import display
from integrations.salesforce import access
from integrations.salesforce.client import SalesforceClient
from integrations.store.db import upsert
from integrations.store.models import Call, CallerMatch, Job
from integrations.sync.callers.matching import CONTEXT_FIELDS, Match, Policy, as_match, decide
from integrations.sync.jobs import queue
from integrations.sync.jobs.kinds import CALLER_CONTEXT, CREATE_LEAD, INSIGHT_CARD

# What ``read_context`` selects, less what the integration user cannot see. Salesforce's
# ``LastActivityDate`` is not in the emulator's schema yet: ``LastModifiedDate`` stands in as
# "last updated".
RECORD_FIELDS = {sobject: ["Id", *fields] for sobject, fields in CONTEXT_FIELDS.items()}
OPEN_OPPORTUNITY = (
    "SELECT Name, StageName, CloseDate FROM Opportunity "
    "WHERE AccountId = {} AND IsClosed = false ORDER BY CloseDate ASC LIMIT 1"
)
OPPORTUNITY_KEYS = ("opportunity", "stage", "opportunity_read_at")


class CallerContext(SQLModel, table=True):
    """What the card shows about a number's record; refreshed when the record changes."""

    __tablename__ = "caller_contexts"

    e164: str = Field(primary_key=True, max_length=20)
    record_id: str = Field(max_length=18)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fetched_at: float


class AircallTag(SQLModel, table=True):
    """The company's Aircall tags (the dispositions an agent picks from), cached."""

    __tablename__ = "aircall_tags"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    name: str = Field(max_length=255)
    fetched_at: float


def _name(value: Any) -> str:
    return str(value.get("Name") or "") if isinstance(value, dict) else ""


def context_of(match: Match, row: dict[str, Any]) -> dict[str, Any]:
    """The card's context from the record's CONTEXT_FIELDS: a SOQL row or a search hit's
    ``fields`` (same shape). ``account_id`` says whose open opportunity to add."""
    context: dict[str, Any] = {
        "sobject": match.sobject,
        "id": match.id,
        "name": row.get("Name") or match.name,
        "owner": _name(row.get("Owner")),
        "company": row.get("Company") or _name(row.get("Account")) or "",
        "updated": (row.get("LastModifiedDate") or "")[:10],
    }
    if match.sobject == "Lead":
        context["lead_status"] = row.get("Status") or ""
    elif match.sobject == "Account":
        # A person account is a person, not a company: its name is the card's title alone.
        context["company"] = "" if match.person_contact else row.get("Name") or ""
        context["account_id"] = match.id
    elif row.get("AccountId"):
        context["account_id"] = row["AccountId"]
    return context


def read_context(sf: SalesforceClient, match: Match) -> dict[str, Any]:
    """The record's context from Salesforce without its opportunity: one SOQL query."""
    context: dict[str, Any] = {"sobject": match.sobject, "id": match.id, "name": match.name}
    wanted = RECORD_FIELDS.get(match.sobject)
    if wanted is None:
        return context

    def query() -> list[dict[str, Any]]:
        fields = ", ".join(access.visible(sf, match.sobject, wanted))
        soql = f"SELECT {fields} FROM {match.sobject} WHERE Id = {{}} LIMIT 1"  # noqa: S608
        return sf.query(soql, match.id)

    rows = access.retry_once(sf, query, match.sobject)
    if not rows:
        return {**context, "missing": True}
    return context_of(match, rows[0])


def _searched(found: CallerMatch | None, match: Match, max_age: float) -> dict[str, Any] | None:
    """The record's fields as the number's search returned them, while that search is fresh."""
    if found is None or time.time() - found.fetched_at >= max_age:
        return None
    for hit in found.matches:
        if hit.get("id") == match.id and isinstance(hit.get("fields"), dict):
            return hit["fields"]
    return None


def _known_opportunity(engine: Engine, account_id: str, max_age: float) -> dict[str, Any] | None:
    """The account's open opportunity as another number's context read it within ``max_age``
    (``opportunity_read_at`` alone: it had none), or None: not read lately."""
    read_at = col(CallerContext.context)["opportunity_read_at"].as_float()
    with Session(engine) as s:
        row = s.exec(
            select(CallerContext.context)
            .where(
                col(CallerContext.context)["account_id"].as_string() == account_id,
                read_at > time.time() - max_age,
            )
            .limit(1)
        ).first()
    if row is None:
        return None
    return {key: row[key] for key in OPPORTUNITY_KEYS if key in row}


def _with_opportunity(
    engine: Engine, sf: SalesforceClient, context: dict[str, Any], max_age: float
) -> dict[str, Any]:
    """Add the open opportunity of the context's account (people of one company share it)."""
    account_id = context.get("account_id")
    if not account_id:
        return context
    known = _known_opportunity(engine, account_id, max_age)
    if known is not None:
        return {**context, **known}
    opportunities = sf.query(OPEN_OPPORTUNITY, account_id)
    context["opportunity_read_at"] = time.time()  # what a share is as old as, however passed on
    if opportunities:
        context["opportunity"] = opportunities[0].get("Name") or ""
        context["stage"] = opportunities[0].get("StageName") or ""
    return context


def caller_context(
    engine: Engine, sf: SalesforceClient, e164: str, match: Match, *, max_age: float
) -> dict[str, Any]:
    """The context of the number's record: from the cache when fresh, for that record and not
    older than the number's search; else from that search's fields; else read (one SOQL).
    A Contact or Account with an account adds its open opportunity (one SOQL, or shared)."""
    with Session(engine) as s:
        cached = s.get(CallerContext, e164)
        found = s.get(CallerMatch, e164)
    fields = _searched(found, match, max_age)
    if (
        cached is not None
        and cached.record_id == match.id
        and time.time() - cached.fetched_at < max_age
        and (found is None or fields is None or cached.fetched_at >= found.fetched_at)
    ):
        return cached.context
    context = context_of(match, fields) if fields is not None else read_context(sf, match)
    if not context.get("missing"):
        context = _with_opportunity(engine, sf, context, max_age)
    with Session(engine) as s:
        upsert(
            s,
            CallerContext(e164=e164, record_id=match.id, context=context, fetched_at=time.time()),
        )
        s.commit()
    return context


def forget_context(engine: Engine, e164: str) -> None:
    with Session(engine) as s:
        row = s.get(CallerContext, e164)
        if row is not None:
            s.delete(row)
            s.commit()


def card_lines(context: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, text) pairs shown on the dashboard's card and Aircall's insight card alike."""
    if not context:
        return []
    lines = [
        ("Owner", context.get("owner") or ""),
        ("Account" if context.get("sobject") == "Contact" else "Company", context.get("company")),
        ("Lead status", context.get("lead_status") or ""),
    ]
    if context.get("opportunity"):
        lines.append(("Open opportunity", f"{context['opportunity']} ({context.get('stage')})"))
    lines.append(("Last updated", context.get("updated") or ""))
    return [(label, str(text)) for label, text in lines if text]


# -- the dashboard's panel -----------------------------------------------------------------


@dataclass
class Panel:
    """What the agent's card shows about a call's caller, and whether it is still coming."""

    call_id: int
    e164: str | None
    number: str
    looked_up: bool  # the number's matches are known (possibly none)
    matches: list[dict[str, Any]] = field(default_factory=list)
    chosen: Match | None = None
    pinned: bool = False
    context: dict[str, Any] | None = None
    creating: bool = False  # a "Create Lead" job is under way for the number
    loading: bool = False  # the lookup or the context is being read

    @property
    def lines(self) -> list[tuple[str, str]]:
        return card_lines(self.context)

    @property
    def can_create_lead(self) -> bool:
        return bool(self.e164) and self.looked_up and not self.matches and not self.creating

    @property
    def can_pick(self) -> bool:
        return len(self.matches) > 1 and not self.pinned


def panel(engine: Engine, call_id: int, policy: Policy) -> Panel | None:
    """The caller panel of one call (None: no such call); three small reads."""
    with Session(engine) as s:
        call = s.get(Call, call_id)
        if call is None:
            return None
        view = Panel(
            call_id=call.id,
            e164=call.e164,
            number=display(call.e164) if call.e164 else "Hidden number",
            looked_up=False,
        )
        if not call.e164:
            return view
        cached = s.get(CallerMatch, call.e164)
        context = s.get(CallerContext, call.e164)
        busy = set(
            s.exec(
                select(Job.kind).where(
                    col(Job.status).in_(queue.ACTIVE),
                    (Job.call_id == call.id) | (Job.dedupe_key == f"{CREATE_LEAD}:{call.e164}"),
                )
            ).all()
        )
    view.creating = CREATE_LEAD in busy
    view.loading = bool(busy & {INSIGHT_CARD, CALLER_CONTEXT})
    if cached is not None:
        view.looked_up, view.pinned = True, cached.pinned
        view.matches = list(cached.matches)
        view.chosen = decide(cached.matches, policy, cached.pinned).match
    if view.chosen is not None and context is not None and context.record_id == view.chosen.id:
        view.context = context.context
    return view


def find_candidate(engine: Engine, e164: str, sobject: str, record_id: str) -> Match | None:
    """One of the number's cached matches (a pick must be one of those shown)."""
    with Session(engine) as s:
        cached = s.get(CallerMatch, e164)
    for match in cached.matches if cached is not None else []:
        if match.get("type") == sobject and match.get("id") == record_id:
            return as_match(match)
    return None


def tags(engine: Engine) -> list[str]:
    """The cached Aircall tag names, sorted."""
    with Session(engine) as s:
        return sorted(s.exec(select(AircallTag.name)).all(), key=str.casefold)


def tags_age(engine: Engine) -> float | None:
    """Seconds since the tags were read (None: never)."""
    with Session(engine) as s:
        newest = s.exec(
            select(AircallTag.fetched_at).order_by(col(AircallTag.fetched_at).desc())
        ).first()
    return None if newest is None else time.time() - newest


def store_tags(engine: Engine, company_tags: list[dict[str, Any]]) -> None:
    """Replace the cached tags with Aircall's list."""
    now = time.time()
    with Session(engine) as s:
        for row in s.exec(select(AircallTag)).all():
            s.delete(row)
        s.flush()
        for tag in company_tags:
            s.add(AircallTag(id=int(tag["id"]), name=str(tag["name"]), fetched_at=now))
        s.commit()
