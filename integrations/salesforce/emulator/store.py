"""Where an org's records live: a table per object, the lagging SOSL index, lookups, rendering.

All state sits behind one re-entrant lock: the app serves from uvicorn's event loop while tests call
``Org`` methods from their own threads. Writes go through ``_store`` so that a composite
``allOrNone`` request can roll them back from a journal.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import ApiError, not_found
from .schema import UNMODELLED_PREFIXES, FieldDef, SObjectDef
from .security import FieldSecurity
from .standard import standard_objects

DEFAULT_VERSION = "59.0"


class Store:
    """The schema and stored records of :class:`~.org.Org`, and the journal of its writes."""

    def __init__(self, sosl_delay: float) -> None:
        self.lock = threading.RLock()
        self.sosl_delay = sosl_delay
        self.schema: dict[str, SObjectDef] = standard_objects()
        self._by_prefix = {o.key_prefix: o.name for o in self.schema.values()}
        self._records: dict[str, dict[str, dict]] = {name: {} for name in self.schema}
        # Record id -> [(monotonic write time, searchable copy)]: SOSL reads the newest copy that
        # is at least ``sosl_delay`` old, so the search index lags API writes.
        self._index: dict[str, list[tuple[float, dict]]] = {}
        self._journal: list[tuple] | None = None
        self.security = FieldSecurity()

    # -- lookups -----------------------------------------------------------------------------

    def sobject(self, name: str) -> SObjectDef:
        """The object definition, by case-insensitive name; unknown -> 404 NOT_FOUND."""
        obj = self.schema.get(name)
        if obj is None:
            lowered = name.lower()
            obj = next((o for o in self.schema.values() if o.name.lower() == lowered), None)
        if obj is None:
            raise not_found()
        return obj

    def api_field(self, obj: SObjectDef, name: str) -> FieldDef | None:
        """The field by name as the request's user sees it (field-level security)."""
        return self.security.visible(obj, obj.field(name))

    def api_relationship(self, obj: SObjectDef, name: str) -> FieldDef | None:
        """The lookup behind a relationship name; hidden with its lookup field."""
        return self.security.visible(obj, obj.relationship(name))

    def find_sobject(self, name: str) -> SObjectDef | None:
        try:
            return self.sobject(name)
        except ApiError:
            return None

    def object_for_id(self, record_id: str) -> str | None:
        """Name of the object an id belongs to, by key prefix (unmodelled objects too)."""
        prefix = record_id[:3]
        name = self._by_prefix.get(prefix)
        if name:
            return name
        return next((n for n, p in UNMODELLED_PREFIXES.items() if p == prefix), None)

    def lookup(self, record_id: str, *, deleted: bool = False) -> tuple[str, dict] | None:
        """(object name, stored record) for an 18-char id, or None."""
        name = self._by_prefix.get(record_id[:3])
        if name is None:
            return None
        rec = self._records[name].get(record_id)
        if rec is None or (rec.get("IsDeleted") and not deleted):
            return None
        return name, rec

    def table(self, sobject: str) -> list[dict]:
        """Stored records of one object, deleted ones included, in creation order."""
        return list(self._records[sobject].values())

    def searchable(self, record_id: str) -> dict | None:
        """The copy of a record that the (lagging) search index holds now."""
        visible_before = time.monotonic() - self.sosl_delay
        seen = None
        for written, snapshot in self._index.get(record_id, ()):
            if written <= visible_before:
                seen = snapshot
        return seen

    @staticmethod
    def _field(obj: SObjectDef, name: str) -> FieldDef:
        f = obj.field(name)
        if f is None:
            raise ValueError(f"{obj.name} has no field {name}")
        return f

    # -- rendering ---------------------------------------------------------------------------

    @staticmethod
    def attributes(sobject: str, record_id: str, version: str = DEFAULT_VERSION) -> dict:
        return {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record_id}"}

    def render(
        self,
        obj: SObjectDef,
        rec: dict,
        fields: list[FieldDef] | None = None,
        version: str = DEFAULT_VERSION,
    ) -> dict:
        out: dict = {"attributes": self.attributes(obj.name, rec["Id"], version)}
        for f in fields if fields is not None else obj.fields.values():
            out[f.name] = copy.deepcopy(rec.get(f.name))
        return out

    # -- transactions ------------------------------------------------------------------------

    def _store(self, sobject: str, record: dict, *, indexed_now: bool = False) -> None:
        rid = record["Id"]
        table = self._records[sobject]
        if self._journal is not None:
            history = self._index.get(rid)
            self._journal.append(
                (sobject, rid, table.get(rid), None if history is None else list(history))
            )
        table[rid] = record
        now = time.monotonic()
        history = self._index.setdefault(rid, [])
        history.append((float("-inf") if indexed_now else now, dict(record)))
        # Drop copies that a newer, already visible copy hides.
        visible_before = now - self.sosl_delay
        while len(history) > 1 and history[1][0] <= visible_before:
            history.pop(0)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Hold the lock and journal writes so that ``rollback`` can undo them (nests)."""
        with self.lock:
            outermost = self._journal is None
            if outermost:
                self._journal = []
            tx = Transaction(self, len(self._journal or []))
            try:
                yield tx
            except BaseException:
                tx.rollback()
                raise
            finally:
                if outermost:
                    self._journal = None

    def _undo(self, savepoint: int) -> None:
        journal = self._journal or []
        while len(journal) > savepoint:
            sobject, rid, old, history = journal.pop()
            if old is None:
                self._records[sobject].pop(rid, None)
            else:
                self._records[sobject][rid] = old
            if history is None:
                self._index.pop(rid, None)
            else:
                self._index[rid] = history


class Transaction:
    """Handle given by ``Store.transaction()``: ``rollback()`` undoes the writes made so far."""

    def __init__(self, org: Store, savepoint: int) -> None:
        self._org = org
        self._savepoint = savepoint

    def rollback(self) -> None:
        self._org._undo(self._savepoint)
