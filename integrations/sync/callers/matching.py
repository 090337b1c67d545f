"""Who is calling, and which Salesforce User is the agent: looked up once, then cached.

Numbers are compared in E.164 on both sides, whatever format Salesforce stores. A caller's hits
are cached per number (the local index), so a call's later events, and the next call from the
same number, spend no search; a record Callbridge creates goes into the index at once, ahead of
Salesforce's lagging search index. A number shared by several records (a switchboard) is logged
on one of them, chosen by the match policy, or waits for a person to pick.

The search also returns what the caller card shows (owner, account, lead status: relationship
fields work in RETURNING as in SOQL), kept with each hit, so a known caller's card costs no
request of its own (``context_card``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, update
from sqlmodel import Session, select

from integrations.errors import RemoteRejected
from integrations.phones import to_e164
from integrations.salesforce import access, person_accounts
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.duplicates import Duplicate
from integrations.settings import Settings
from integrations.store.db import insert_ignore, upsert
from integrations.store.models import AgentUser, CallerMatch, CreationLock

log = logging.getLogger(__name__)
T = TypeVar("T")
STANDARD_PHONE_FIELDS = {
    "Contact": ["Phone", "MobilePhone", "HomePhone", "OtherPhone", "AssistantPhone"],
    "Lead": ["Phone", "MobilePhone"],
    "Account": ["Phone"],
}
EXTRA_FIELDS = {
    "Contact": ["Name", "AccountId", "OwnerId", "LastModifiedDate"],
    "Lead": ["Name", "Company", "Status", "OwnerId", "IsConverted", "LastModifiedDate"],
    "Account": ["Name", "OwnerId", "LastModifiedDate"],
}
# What the caller card shows (context_card.context_of reads them), fetched by the same search.
# context_card.RECORD_FIELDS reads the same fields when there was no search (after a pick).
CONTEXT_FIELDS = {
    "Contact": ["Name", "Owner.Name", "AccountId", "Account.Name", "LastModifiedDate"],
    "Lead": ["Name", "Company", "Status", "Owner.Name", "LastModifiedDate"],
    "Account": ["Name", "Owner.Name", "LastModifiedDate"],
}


@dataclass(frozen=True)
class Match:
    """The record a call is logged against."""

    sobject: str  # Contact | Lead | Account
    id: str
    name: str
    person_contact: str | None = None  # a person account's hidden Contact: the Task's WhoId

    @property
    def label(self) -> str:
        """What the record is, in Salesforce's words (a person account is a person)."""
        return "Person Account" if self.person_contact else self.sobject


@dataclass(frozen=True)
class Policy:
    """How a caller's hits become the one record a call is logged on (the manager's settings)."""

    priority: tuple[str, ...] = ("Contact", "Lead", "Account")
    multiple: str = "newest"  # newest | review
    extra_phone_fields: tuple[str, ...] = ()  # "Contact.Direct_Line__c", custom phone fields
    person_accounts: bool = False  # the org has them: Accounts are searched by person phones

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            priority=tuple(settings.match_priority),
            multiple=settings.match_multiple,
            extra_phone_fields=tuple(settings.salesforce_phone_fields),
        )

    def phone_fields(self, sobject: str) -> list[str]:
        extra = [f.split(".", 1)[1] for f in self.extra_phone_fields if f.startswith(f"{sobject}.")]
        if sobject == "Account" and self.person_accounts:
            extra = [*person_accounts.PHONE_FIELDS, *extra]
        return STANDARD_PHONE_FIELDS.get(sobject, []) + extra

    def _person_fields(self, sobject: str) -> tuple[str, ...]:
        return person_accounts.FIELDS if sobject == "Account" and self.person_accounts else ()

    def returning(self, context: bool = True) -> dict[str, list[str]]:
        """Per object, the fields the search returns: every phone field to confirm the hit,
        and (``context``) what the caller card shows."""
        return {
            sobject: list(
                dict.fromkeys(
                    [
                        "Id",
                        *EXTRA_FIELDS.get(sobject, ["Name"]),
                        *(CONTEXT_FIELDS.get(sobject, []) if context else []),
                        *self._person_fields(sobject),
                        *self.phone_fields(sobject),
                    ]
                )
            )
            for sobject in self.priority
        }


@dataclass(frozen=True)
class Decision:
    """The outcome of matching: a record, nobody, or several for a person to choose from."""

    match: Match | None
    candidates: tuple[dict[str, Any], ...] = ()

    @property
    def needs_review(self) -> bool:
        return self.match is None and len(self.candidates) > 1


def _returned(record: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """The record's values for ``paths``, parents nested as Salesforce returns them (``{"Owner":
    {"Name": ...}}`` or ``None``) without their ``attributes``."""
    fields: dict[str, Any] = {}
    for path in paths:
        top, _, child = path.partition(".")
        value = record.get(top)
        if not child:
            fields[top] = value
        elif isinstance(value, dict):
            fields.setdefault(top, {})[child] = value.get(child)
        else:
            fields.setdefault(top, None)
    return fields


def confirmed(
    records: list[dict[str, Any]], e164: str, region: str, policy: Policy
) -> list[dict[str, Any]]:
    """Keep the search hits whose phone really is this number (SOSL matches loosely), each with
    the card's fields when the search returned them."""
    hits = []
    for record in records:
        sobject = record.get("attributes", {}).get("type", "")
        if sobject == "Lead" and record.get("IsConverted"):
            continue  # a converted lead is read-only; its Contact is the record to log on
        if any(to_e164(record.get(f), region) == e164 for f in policy.phone_fields(sobject)):
            hit = {
                "type": sobject,
                "id": record["Id"],
                "name": record.get("Name") or "",
                "modified": record.get("LastModifiedDate") or "",
            }
            if record.get("IsPersonAccount") and record.get("PersonContactId"):
                hit["person_contact"] = record["PersonContactId"]
            paths = CONTEXT_FIELDS.get(sobject)
            if paths and all(p.partition(".")[0] in record for p in paths):
                hit["fields"] = _returned(record, paths)
            hits.append(hit)
    return hits


def as_match(hit: dict[str, Any]) -> Match:
    """A cached hit (the local index's shape) as the Match it stands for."""
    return Match(hit["type"], hit["id"], hit.get("name") or "", hit.get("person_contact"))


def decide(matches: list[dict[str, Any]], policy: Policy, pinned: bool = False) -> Decision:
    """Apply the policy: the first object type in priority order that has hits wins; within it,
    one hit is the match, several are either the most recently updated or sent to review."""
    if pinned and matches:
        return Decision(as_match(matches[0]))
    for sobject in policy.priority:
        hits = [m for m in matches if m["type"] == sobject]
        if not hits:
            continue
        if len(hits) > 1 and policy.multiple == "review":
            return Decision(None, tuple(hits))
        best = max(hits, key=lambda m: (m.get("modified") or "", m["id"]))
        return Decision(as_match(best), tuple(hits))
    return Decision(None)


def choose(matches: list[dict[str, Any]]) -> Match | None:
    """The default policy's match (used where no settings are at hand, e.g. the dashboard)."""
    return decide(matches, Policy()).match


_locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
_locks_guard = threading.Lock()


def lookup_lock(e164: str) -> threading.Lock:
    """One search per number at a time in this process; the others then read the cache."""
    with _locks_guard:
        lock = _locks.get(e164)
        if lock is None:
            lock = _locks[e164] = threading.Lock()
        return lock


def _cached(engine: Engine, e164: str, max_age: float) -> CallerMatch | None:
    with Session(engine) as s:
        cached = s.get(CallerMatch, e164)
    if cached is not None and (cached.pinned or time.time() - cached.fetched_at < max_age):
        return cached
    return None


def cached_decision(engine: Engine, e164: str, max_age: float, policy: Policy) -> Decision | None:
    """The caller's record from the local index, or None when it holds nothing fresh."""
    cached = _cached(engine, e164, max_age)
    return None if cached is None else decide(cached.matches, policy, cached.pinned)


def caller_decision(
    engine: Engine,
    sf: SalesforceClient,
    e164: str,
    *,
    region: str,
    max_age: float,
    policy: Policy,
) -> Decision:
    """The caller's record, from the local index when fresh, else one SOSL search."""
    cached = cached_decision(engine, e164, max_age, policy)
    if cached is not None:
        return cached
    with lookup_lock(e164):  # the call's card and its Task look the caller up at once
        cached = cached_decision(engine, e164, max_age, policy)
        if cached is not None:
            return cached
        policy = search_policy(sf, policy)
        return remember_search(engine, e164, searched(sf, e164, policy), region, policy)


def visible_returning(
    sf: SalesforceClient, returning: dict[str, list[str]]
) -> dict[str, list[str]]:
    """The search's fields without those the integration user cannot see (a phone field
    hidden by field-level security is then not compared: Health names it)."""
    return {sobject: access.visible(sf, sobject, fields) for sobject, fields in returning.items()}


def search_policy(sf: SalesforceClient, policy: Policy) -> Policy:
    """The policy a search runs under: with person accounts when the org has them."""
    if "Account" in policy.priority:  # Account's describe, cached: no request per call
        return replace(policy, person_accounts=person_accounts.enabled(sf))
    return policy


def _search(
    sf: SalesforceClient,
    policy: Policy,
    run: Callable[[dict[str, list[str]]], T],
) -> T:
    """``run(returning)`` with the fields the integration user can see; once more after a field
    refusal (``access.retry_once``), and without the card's fields when those are refused."""

    def attempt(returning: dict[str, list[str]]) -> T:
        return access.retry_once(sf, lambda: run(visible_returning(sf, returning)), *returning)

    try:
        return attempt(policy.returning())
    except RemoteRejected as exc:
        if exc.error_code != "INVALID_FIELD":
            raise
        # A card field the integration user may not read (field-level security, no access to
        # Account) must not stop calls being logged: search again without the card's fields
        # (the card then tries its own query, and goes without context if that is refused too).
        log.warning("matching.context_fields_refused", extra={"error": str(exc.body)[:500]})
        return attempt(policy.returning(context=False))


def searched(sf: SalesforceClient, e164: str, policy: Policy) -> list[dict[str, Any]]:
    """The records the number's SOSL search finds (one request), every phone field returned
    so ``confirmed`` can tell which are really this number."""
    return _search(sf, policy, lambda shown: sf.search_phone(e164, shown))


def searched_together(
    sf: SalesforceClient, numbers: list[str], policy: Policy
) -> list[dict[str, Any]] | None:
    """As ``searched``, for a group of numbers (``soql.phone_groups``) in one request; each
    number's hits are then those ``confirmed`` for it. None when rows may have been cut."""
    return _search(sf, policy, lambda shown: sf.search_phones(numbers, shown))


def remember_search(
    engine: Engine,
    e164: str,
    found: list[dict[str, Any]],
    region: str,
    policy: Policy,
) -> Decision:
    """Keep the search's hits for this number (those whose phone is it) in the local index,
    unless a person picked a record meanwhile, and decide."""
    matches = confirmed(found, e164, region, policy)
    with Session(engine) as s:
        current = s.get(CallerMatch, e164)
        if current is not None and current.pinned:  # a pick made meanwhile wins
            return decide(current.matches, policy, True)
        upsert(s, CallerMatch(e164=e164, matches=matches, fetched_at=time.time()))
        s.commit()
    return decide(matches, policy)


def cached_matches(engine: Engine, e164: str) -> list[dict[str, Any]]:
    """Every confirmed hit the local index holds for the number."""
    with Session(engine) as s:
        cached = s.get(CallerMatch, e164)
        return cached.matches if cached is not None else []


def caller_matches(
    engine: Engine,
    sf: SalesforceClient,
    e164: str,
    *,
    region: str,
    max_age: float,
    policy: Policy,
) -> list[dict[str, Any]]:
    """Every confirmed hit for the number (for cards and pickers), cached like the decision."""
    caller_decision(engine, sf, e164, region=region, max_age=max_age, policy=policy)
    return cached_matches(engine, e164)


def remember_caller(engine: Engine, e164: str, match: Match, *, pinned: bool = False) -> None:
    """Put a record in the local index for its number: one we just created (Salesforce's search
    index lags behind writes) or one a person picked (``pinned``: it never expires)."""
    entry = {"type": match.sobject, "id": match.id, "name": match.name, "modified": ""}
    if match.person_contact:
        entry["person_contact"] = match.person_contact
    with Session(engine) as s:
        upsert(s, CallerMatch(e164=e164, matches=[entry], fetched_at=time.time(), pinned=pinned))
        s.commit()


@asynccontextmanager
async def creation_lock(engine: Engine, key: str, *, hold: float = 30.0) -> AsyncIterator[None]:
    """Serialise record creation for one number across workers and processes.

    A row per key with an expiry: a crashed holder's lock frees itself after ``hold`` seconds.
    """
    holder = uuid.uuid4().hex
    deadline = time.monotonic() + hold * 2

    def acquire() -> bool:
        now = time.time()
        with Session(engine) as s:
            s.execute(
                insert_ignore(
                    engine, CreationLock.__table__, {"key": key, "holder": holder, "until": 0.0}
                )
            )
            got = s.execute(
                update(CreationLock)
                .where(
                    CreationLock.key == key,
                    (CreationLock.until < now) | (CreationLock.holder == holder),
                )
                .values(holder=holder, until=now + hold)
            ).rowcount
            s.commit()
        return bool(got)

    def release() -> None:
        with Session(engine) as s:
            s.execute(
                delete(CreationLock).where(CreationLock.key == key, CreationLock.holder == holder)
            )
            s.commit()

    while not await asyncio.to_thread(acquire):
        if time.monotonic() > deadline:
            raise TimeoutError(f"creation lock for {key} is held elsewhere")
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        await asyncio.to_thread(release)


def agent_user(
    engine: Engine, sf: SalesforceClient, email: str, *, max_age: float, name: str | None = None
) -> str | None:
    """The Salesforce User for an Aircall agent: the manager's mapping, else the one active
    User with the agent's email (cached). None is recorded too, so the manager sees who is
    unmapped instead of calls silently owned by the integration user."""
    key = email.strip().lower()
    with Session(engine) as s:
        cached = s.get(AgentUser, key)
        if cached is not None and (cached.manual or time.time() - cached.fetched_at < max_age):
            return cached.sf_user_id
    rows = sf.query(
        "SELECT Id FROM User WHERE Email = {} AND IsActive = true LIMIT 2", email.strip()
    )
    user_id = rows[0]["Id"] if len(rows) == 1 else None  # two users share it: do not guess
    with Session(engine) as s:
        current = s.get(AgentUser, key)
        if current is not None and current.manual:
            return current.sf_user_id
        upsert(s, AgentUser(email=key, sf_user_id=user_id, fetched_at=time.time(), name=name))
        s.commit()
    return user_id


def set_agent_user(engine: Engine, email: str, sf_user_id: str | None) -> None:
    """A manager maps an agent to a Salesforce User (or clears the mapping)."""
    key = email.strip().lower()
    with Session(engine) as s:
        row = s.get(AgentUser, key) or AgentUser(email=key, fetched_at=time.time())
        row.sf_user_id, row.manual, row.fetched_at = sf_user_id, sf_user_id is not None, time.time()
        s.add(row)
        s.commit()


def unmapped_agents(engine: Engine) -> list[AgentUser]:
    """Agents whose calls have no Salesforce owner: shown to the manager as a warning."""
    with Session(engine) as s:
        query = select(AgentUser).where(AgentUser.sf_user_id.is_(None)).order_by(AgentUser.email)
        return list(s.exec(query))


def linked(duplicate: Duplicate) -> dict[str, str]:
    """What the timeline says when a duplicate rule refused a create and the call was linked
    to the record the rule matched."""
    return {
        "id": duplicate.id,
        "linked": f"the org's duplicate rule {duplicate.rule or '(unnamed)'} matched this "
        f"existing {duplicate.sobject}: the call is logged on it",
    }


# A record a call was to be logged on is gone: deleted, merged into another, or (a Lead)
# converted. Salesforce then refuses it as the Task's WhoId/WhatId with one of these.
GONE_CODES = {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "CANNOT_UPDATE_CONVERTED_LEAD"}
_SURVIVOR = {
    "Lead": "SELECT Id, Name, IsDeleted, MasterRecordId, IsConverted, ConvertedContactId "
    "FROM Lead WHERE Id = {}",
    "Contact": "SELECT Id, Name, IsDeleted, MasterRecordId FROM Contact WHERE Id = {}",
    "Account": "SELECT Id, Name, IsDeleted, MasterRecordId FROM Account WHERE Id = {}",
}


def heal(
    engine: Engine,
    sf: SalesforceClient,
    e164: str | None,
    gone: Match,
    *,
    region: str,
    policy: Policy,
) -> Decision:
    """The record to use instead of one that is gone: a merge's winner, a converted Lead's
    Contact, else whatever a fresh search finds. The local index (and a person's pick) moves
    to it, so the number's next calls go there at once."""
    rows = (
        sf.query(_SURVIVOR[gone.sobject], gone.id, include_deleted=True)
        if gone.sobject in _SURVIVOR
        else []
    )
    row = rows[0] if rows else {}
    survivor = None
    if row.get("IsConverted") and row.get("ConvertedContactId"):
        survivor = Match("Contact", row["ConvertedContactId"], row.get("Name") or gone.name)
    elif row.get("MasterRecordId"):
        survivor = Match(gone.sobject, row["MasterRecordId"], row.get("Name") or gone.name)
    if not e164:
        return Decision(survivor)
    with Session(engine) as s:
        cached = s.get(CallerMatch, e164)
        pinned = bool(cached and cached.pinned)
    if survivor is not None:
        remember_caller(engine, e164, survivor, pinned=pinned)
        return Decision(survivor)
    with Session(engine) as s:
        if (row := s.get(CallerMatch, e164)) is not None:
            s.delete(row)
            s.commit()
    return caller_decision(engine, sf, e164, region=region, max_age=0, policy=policy)
