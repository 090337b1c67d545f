"""Salesforce writes of concurrent jobs, sent together: one sObject Collections request for up
to 200 creates (or updates) of one object, instead of one request each.

An org's daily API allocation is shared by every integration and user; a hundred calls ending
in the same second, or a backfill, would otherwise spend a request per call. Each record's
outcome goes back to its own job: a success continues that job, a refusal fails that job alone
with its own error, a transient failure (a lock, an outage) retries that job alone.

The same for the look-ups: the Task by ``CallObject`` of several calls in one ``IN (...)``
query (``find``), and several new numbers' phone searches in one SOSL ``FIND {a OR b}``
(``search``; ``callers.searches`` says when the results can be told apart, else searches
alone).

Only jobs the worker runs as writers (``writer()``: the calls' Tasks, automations, dispositions)
join batches; live work (a Lead made during the call) always goes alone, at once.

When to send: at once when nothing was sent in the last ``window`` seconds and every writer
job running in this worker is already waiting (a quiet org keeps its latency: a lone call's Task
goes at once, in a plain single-record request; a burst of jobs claimed together goes as one);
otherwise, once writes are flowing, when ``size`` records wait or ``window`` seconds after the
first of them arrived. Searches are a flow of their own (a lone call's search does not make
its Task wait); a writer waiting for another job's search of the same number (``aside()``)
counts as waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from integrations.salesforce.client import COLLECTION_SIZE, Outcome, SalesforceClient
from integrations.salesforce.duplicates import CODE as DUPLICATES
from integrations.salesforce.soql import api_name
from integrations.sync.callers.matching import Policy, searched
from integrations.sync.callers.searches import GROUP, search_together

CREATE, UPDATE, UPSERT, FIND, SEARCH = "create", "update", "upsert", "find", "search"
_joins: ContextVar[bool] = ContextVar("joins_batches", default=False)
# operation, object, and: an upsert's external ID; a look-up's "Field:Select,List"; a phone
# search's match policy (its objects and fields)
Key = tuple[str, str, Hashable]


def _flow(key: Key) -> str:
    return SEARCH if key[0] == SEARCH else "write"


@dataclass
class _Waiting:
    item: Any  # create: the fields; update: (record id, fields); upsert: (external id, fields)
    future: asyncio.Future[Outcome]


@dataclass
class _Batch:
    first_at: float
    waiting: list[_Waiting] = field(default_factory=list)


class WriteBatcher:
    def __init__(
        self,
        client: SalesforceClient,
        *,
        window: float,
        size: int = COLLECTION_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.window = window
        self.size = min(size, COLLECTION_SIZE)
        self.clock = clock
        self.writers = 0  # running jobs whose writes join batches (``writer()``)
        self._aside = 0  # writers waiting for another job, not for a batch (``aside()``)
        self._batches: dict[Key, _Batch] = {}
        self._senders: dict[Key, asyncio.Task[None]] = {}
        # When each flow last sent: the writes (and look-ups), and the searches apart, so that
        # a lone job's search does not make its Task wait as if writes were flowing.
        self._last_sent: dict[str, float] = {}
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Around a job whose writes join batches: while it runs, a batch may wait for it."""
        self.writers += 1
        token = _joins.set(True)
        try:
            yield
        finally:
            _joins.reset(token)
            self.writers -= 1
            self._poke()

    @contextmanager
    def aside(self) -> Iterator[None]:
        """Around a writer's wait for another job (the search of the same number): a batch need
        not wait for it meanwhile."""
        if not _joins.get():
            yield
            return
        self._aside += 1
        self._poke()
        try:
            yield
        finally:
            self._aside -= 1

    async def create(self, sobject: str, fields: dict[str, Any]) -> str:
        outcome = await self._submit(CREATE, sobject, fields)
        return str(outcome.id)

    async def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        await self._submit(UPDATE, sobject, (record_id, fields))

    async def upsert(self, sobject: str, field: str, value: str, fields: dict[str, Any]) -> str:
        outcome = await self._submit(UPSERT, sobject, (value, fields), field)
        return str(outcome.id)

    async def find(
        self, sobject: str, field: str, value: str, select: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """The record whose ``field`` is ``value`` (or None), read with others' look-ups in one
        ``WHERE field IN (...)`` query."""
        outcome = await self._submit(FIND, sobject, value, f"{field}:{','.join(select)}")
        return outcome.row

    async def search(self, e164: str, policy: Policy) -> list[dict[str, Any]]:
        """What the number's phone search finds (every phone field returned, so whose number
        each record is can be told), read with other jobs' searches in one SOSL request
        (``callers.searches``)."""
        outcome = await self._submit(SEARCH, "", e164, policy)
        return outcome.records or []

    def _size(self, key: Key) -> int:
        return GROUP if key[0] == SEARCH else self.size

    def _waiting_count(self) -> int:
        return sum(len(batch.waiting) for batch in self._batches.values())

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def _submit(self, op: str, sobject: str, item: Any, field: Hashable = "") -> Outcome:
        key = (op, sobject, field)
        if self.window <= 0 or not _joins.get():
            return await asyncio.to_thread(self._send_one, key, item)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new worker loop: nothing of the old one carries over
            self._loop, self._changed = loop, asyncio.Event()
            self._batches.clear()
            self._senders.clear()
        if self._lone_and_quiet(key):
            # What the sender would do at once, without a task and two loop turns in between:
            # a quiet org's lone write costs what it costs with batching off.
            self._last_sent[_flow(key)] = self.clock()
            return await asyncio.to_thread(self._send_one, key, item)
        batch = self._batches.setdefault(key, _Batch(self.clock()))
        waiting = _Waiting(item, loop.create_future())
        batch.waiting.append(waiting)
        if key not in self._senders:
            self._senders[key] = asyncio.create_task(self._sender(key))
        self._poke()
        outcome = await waiting.future
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def _due(self, key: Key, batch: _Batch) -> bool:
        now = self.clock()
        if len(batch.waiting) >= self._size(key) or now >= batch.first_at + self.window:
            return True
        quiet = now - self._last_sent.get(_flow(key), float("-inf")) >= self.window
        return quiet and self._waiting_count() + self._aside >= self.writers

    def _lone_and_quiet(self, key: Key) -> bool:
        """Due at once and alone: no other writer is running, nothing waits, and nothing of
        the key's flow was sent in the last ``window`` seconds."""
        return (
            self.writers <= 1
            and not self._batches
            and self.clock() - self._last_sent.get(_flow(key), float("-inf")) >= self.window
        )

    async def _sender(self, key: Key) -> None:
        """Send the object's batch when it is due, and the next one after it, until none waits."""
        assert self._changed is not None  # noqa: S101  (set by the first submit)
        try:
            while (batch := self._batches.get(key)) is not None:
                while not self._due(key, batch):
                    self._changed.clear()
                    left = batch.first_at + self.window - self.clock()
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), max(left, 0.001))
                size = self._size(key)
                sending = [w for w in batch.waiting[:size] if not w.future.done()]
                rest = batch.waiting[size:]
                if rest:
                    self._batches[key] = _Batch(self.clock(), rest)
                else:
                    del self._batches[key]
                if sending:
                    await self._send(key, sending)
        finally:
            self._senders.pop(key, None)

    async def _send(self, key: Key, sending: list[_Waiting]) -> None:
        self._last_sent[_flow(key)] = self.clock()
        try:
            if len(sending) == 1:
                outcomes = [await asyncio.to_thread(self._send_one, key, sending[0].item)]
            else:
                outcomes = await asyncio.to_thread(self._send_many, key, [w.item for w in sending])
        except Exception as exc:  # noqa: BLE001  (each job retries or fails on its own)
            for waiting in sending:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            return
        for waiting, outcome in zip(sending, outcomes, strict=True):
            if waiting.future.done():
                continue
            error = outcome.error
            if key[0] == CREATE and error is not None and error.error_code == DUPLICATES:
                # A collection names no match: alone, the rule's answer lists the records.
                try:
                    outcome = await asyncio.to_thread(self._send_one, key, waiting.item)
                except Exception as exc:  # noqa: BLE001  (that job's own outcome)
                    waiting.future.set_exception(exc)
                    continue
            waiting.future.set_result(outcome)

    def _send_many(self, key: Key, items: list[Any]) -> list[Outcome]:
        op, sobject, field = key
        if op == SEARCH:
            return search_together(self.client, items, field)
        if op == FIND:
            return self._find(sobject, field, items)
        if op == CREATE:
            return self.client.create_many(sobject, items)
        if op == UPSERT:
            return self.client.upsert_many(sobject, field, items)
        return self.client.update_many(sobject, items)

    def _find(self, sobject: str, spec: str, values: list[str]) -> list[Outcome]:
        field, _, select = spec.partition(":")
        names = ", ".join(api_name(n) for n in dict.fromkeys([*select.split(","), field]))
        # Names are checked API names; the values go through format_soql, escaped.
        soql = f"SELECT {names} FROM {api_name(sobject)} WHERE {api_name(field)} IN {{}}"  # noqa: S608
        rows = {str(row.get(field)): row for row in self.client.query(soql, values)}
        return [
            Outcome(rows[v]["Id"], None, rows[v]) if v in rows else Outcome(None, None)
            for v in values
        ]

    def _send_one(self, key: Key, item: Any) -> Outcome:
        """One record, the plain request (its error raised as a single create's would be)."""
        op, sobject, field = key
        if op == SEARCH:
            return Outcome(None, None, records=searched(self.client, item, field))
        if op == FIND:
            return self._find(sobject, field, [item])[0]
        if op == CREATE:
            return Outcome(self.client.create(sobject, item), None)
        if op == UPSERT:
            value, fields = item
            return Outcome(self.client.upsert(sobject, field, value, fields), None)
        record_id, fields = item
        self.client.update(sobject, record_id, fields)
        return Outcome(record_id, None)
