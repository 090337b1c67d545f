"""What a job handler works with: the store, both clients, the settings, and its timeline."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.aircall.client import AircallClient
from integrations.errors import RemoteRejected
from integrations.salesforce import access, duplicates, record_types
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.duplicates import Duplicate
from integrations.settings import Settings
from integrations.store.db import upsert
from integrations.store.models import Job, JobStep, OrgFact
from integrations.sync.callers.matching import (
    Decision,
    Policy,
    cached_decision,
    cached_matches,
    lookup_lock,
    remember_search,
    search_policy,
)
from integrations.sync.jobs.batching import WriteBatcher
from integrations.sync.jobs.lease import check_current, confirm_current

T = TypeVar("T")
FALLBACK_ZONE = "UTC"  # an org that names no time zone
LOCK_POLL = 0.02  # seconds between tries of a number's lock held outside the worker's jobs


@dataclass
class Context:
    engine: Engine
    settings: Settings
    salesforce: SalesforceClient
    aircall: AircallClient
    writes: WriteBatcher = field(init=False)
    _gates: weakref.WeakValueDictionary[str, asyncio.Lock] = field(
        init=False, default_factory=weakref.WeakValueDictionary
    )

    def __post_init__(self) -> None:
        self.writes = WriteBatcher(
            self.salesforce, window=self.settings.salesforce_batch_window_seconds
        )

    def org_zone(self) -> str:
        """The org's time zone: the setting, else ``Organization.TimeZoneSidKey`` read once.

        Blocking (it may query Salesforce): ``await ctx.sf(ctx.org_zone)``."""
        if self.settings.salesforce_time_zone:
            return self.settings.salesforce_time_zone
        with Session(self.engine) as s:
            fact = s.get(OrgFact, "TimeZoneSidKey")
        if fact is not None:
            return fact.value
        rows = self.salesforce.query("SELECT TimeZoneSidKey FROM Organization LIMIT 1")
        zone = (rows[0].get("TimeZoneSidKey") if rows else None) or FALLBACK_ZONE
        with Session(self.engine) as s:
            upsert(s, OrgFact(key="TimeZoneSidKey", value=zone, fetched_at=time.time()))
            s.commit()
        return zone

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking store code off the event loop."""
        return await asyncio.to_thread(fn, *args)

    async def sf(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a (blocking) Salesforce client call off the event loop; not once the job's lease
        is known to be lost (``jobs.lease``)."""
        check_current()
        return await asyncio.to_thread(fn, *args)

    async def create(self, sobject: str, fields: dict[str, Any]) -> str:
        """Create a record, with other jobs' creates when they come together (``writes``). A
        Lead, Contact or Opportunity gets the configured record type (``record_types``).

        The lease is confirmed (and extended) in the database first, so a job another worker
        has taken over does not create twice."""
        await self._confirm_lease()
        if not record_types.configured(self.settings, sobject):
            return await self._settable(
                sobject, fields, True, lambda kept: self.writes.create(sobject, kept)
            )
        fields = await self.sf(record_types.for_create, self.salesforce, sobject, fields)
        try:
            return await self._settable(
                sobject, fields, True, lambda kept: self.writes.create(sobject, kept)
            )
        except RemoteRejected as exc:
            record_types.forget_if_refused(self.salesforce, sobject, exc)
            raise

    async def create_or_match(
        self, sobject: str, fields: dict[str, Any]
    ) -> tuple[str, Duplicate | None]:
        """Create a Lead, Contact or Account; where the org's duplicate rule refuses it, the
        record the rule matched instead (and which rule): linking to it is what a person
        would do."""
        try:
            return await self.create(sobject, fields), None
        except RemoteRejected as exc:
            found = duplicates.matched(exc)
            if not found:
                raise
            return found[0].id, found[0]

    async def find(
        self, sobject: str, field: str, value: str, select: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """The record whose ``field`` is ``value``, or None; concurrent jobs' look-ups of the
        same kind share one query (``writes``)."""
        check_current()
        sf = self.salesforce
        shown = tuple(await self.sf(access.visible, sf, sobject, select)) or ("Id",)
        return await self.writes.find(sobject, field, value, shown)

    async def upsert(self, sobject: str, field: str, value: str, fields: dict[str, Any]) -> str:
        """Create or update the record whose External ID ``field`` is ``value``, as ``create``
        does: sent twice, it is still one record."""
        await self._confirm_lease()
        return await self._settable(
            sobject, fields, True, lambda kept: self.writes.upsert(sobject, field, value, kept)
        )

    async def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        """Change a record, as ``create`` does."""
        await self._confirm_lease()
        await self._settable(
            sobject, fields, False, lambda kept: self.writes.update(sobject, record_id, kept)
        )

    async def _settable(
        self,
        sobject: str,
        fields: dict[str, Any],
        creating: bool,
        send: Callable[[dict[str, Any]], Awaitable[T]],
    ) -> T:
        """Send ``fields`` without those the integration user cannot set (``access``); when
        Salesforce refuses one that describe had not said (a profile just changed), once more
        with describe read again."""
        sf = self.salesforce

        def kept() -> dict[str, Any]:
            return access.settable(sf, sobject, fields, creating=creating)

        try:
            return await send(await self.sf(kept))
        except RemoteRejected as exc:
            if not await self.sf(access.refresh_after, sf, exc, sobject):
                raise
        return await send(await self.sf(kept))

    async def _confirm_lease(self) -> None:
        check_current()
        await asyncio.to_thread(confirm_current)

    async def caller(self, e164: str) -> Decision:
        """The caller's record under the settings' match policy: the local index when fresh,
        else a SOSL search, one request with other jobs' searches due at once (``writes``)."""
        check_current()
        settings, engine = self.settings, self.engine
        policy = Policy.from_settings(settings)
        max_age = settings.caller_cache_seconds
        cached = await self.db(cached_decision, engine, e164, max_age, policy)
        if cached is not None:
            return cached
        async with self._searching(e164):  # the call's card and its Task look it up at once
            cached = await self.db(cached_decision, engine, e164, max_age, policy)
            if cached is not None:
                return cached
            policy = await self.sf(search_policy, self.salesforce, policy)
            found = await self.writes.search(e164, policy)
            return await self.db(
                remember_search, engine, e164, found, settings.default_region, policy
            )

    async def caller_matches(self, e164: str) -> list[dict[str, Any]]:
        """Every confirmed record for the number (cards and pickers), cached like ``caller``."""
        await self.caller(e164)
        return await self.db(cached_matches, self.engine, e164)

    @asynccontextmanager
    async def _searching(self, e164: str) -> AsyncIterator[None]:
        """One search per number at a time (``matching.lookup_lock``): this worker's jobs wait
        for each other without holding a thread (a thread held while its search waits for a
        batch would starve the threads the batch is sent from)."""
        gate = self._gates.setdefault(e164, asyncio.Lock())
        with self.writes.aside():
            await gate.acquire()
        try:
            lock = lookup_lock(e164)
            if not lock.acquire(blocking=False):  # a look-up outside the worker's jobs holds it
                with self.writes.aside():
                    while not lock.acquire(blocking=False):  # noqa: ASYNC110  (a thread's lock)
                        await asyncio.sleep(LOCK_POLL)
            try:
                yield
            finally:
                lock.release()
        finally:
            gate.release()

    async def record(
        self, job: Job, service: str, action: str, sent: Any, received: Any, ok: bool = True
    ) -> None:
        """Add a step to the call's timeline: what we sent and what came back."""
        await asyncio.to_thread(self._record, job, service, action, sent, received, ok)

    def _record(
        self, job: Job, service: str, action: str, sent: Any, received: Any, ok: bool
    ) -> None:
        with Session(self.engine) as s:
            s.add(
                JobStep(
                    job_id=job.id,
                    call_id=job.call_id,
                    at=time.time(),
                    service=service,
                    action=action,
                    sent=sent,
                    received=received,
                    ok=ok,
                )
            )
            s.commit()
