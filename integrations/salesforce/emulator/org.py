"""In-memory org: records, users, tokens, the API allocation, and Salesforce's write rules.

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

from ..ids import InvalidId, new_id, normalize, to18
from . import rules
from .errors import ApiError, bad_request, not_found
from .faults import FaultPlan
from .schema import NUMBER_TYPES, UNMODELLED_PREFIXES, FieldDef, SObjectDef, custom_field
from .sessions import Allocation, CursorStore, TokenStore
from .standard import standard_objects
from .values import check_value, coerce, format_datetime, now_utc

DEFAULT_VERSION = "59.0"


class Org:
    """One Salesforce org held in memory.

    ``insert``/``records``/``get``/``add_user`` are for tests and the demo (no API usage counted);
    the REST layer calls ``create``/``retrieve``/``update``/``delete``/``upsert``, which raise
    ``ApiError`` exactly where Salesforce answers with an error array.
    """

    def __init__(
        self,
        *,
        org_id: str | None = None,
        client_id: str = "emulator-client",
        client_secret: str = "emulator-secret",  # noqa: S107 - a loopback test double's secret
        api_max: int = 15000,
        sosl_delay: float = 0.0,
        session_idle_seconds: float = 7200.0,
        jwt_public_key_pem: bytes | None = None,
        jwt_username: str | None = None,
        time_zone: str = "America/Los_Angeles",
    ) -> None:
        self.lock = threading.RLock()
        self.org_id = to18(org_id) if org_id else new_id("00D")
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_max = api_max
        self.sosl_delay = sosl_delay
        self.jwt_public_key_pem = jwt_public_key_pem
        self.query_batch_size = 2000
        self.faults = FaultPlan()
        self.schema: dict[str, SObjectDef] = standard_objects()
        self._by_prefix = {o.key_prefix: o.name for o in self.schema.values()}
        self._records: dict[str, dict[str, dict]] = {name: {} for name in self.schema}
        # Record id -> [(monotonic write time, searchable copy)]: SOSL reads the newest copy that
        # is at least ``sosl_delay`` old, so the search index lags API writes.
        self._index: dict[str, list[tuple[float, dict]]] = {}
        self._journal: list[tuple] | None = None
        self._allocation = Allocation()
        self._tokens = TokenStore(self.org_id, session_idle_seconds)
        self.cursors = CursorStore()
        self.schema_changed = now_utc()
        stamp = format_datetime(self.schema_changed)
        self._records["Organization"][self.org_id] = {
            "Id": self.org_id,
            "Name": "Callbridge Emulator Org",
            "TimeZoneSidKey": time_zone,
            "DefaultLocaleSidKey": "en_US",
            "LanguageLocaleKey": "en_US",
            "OrganizationType": "Developer Edition",
            "InstanceName": "EMU1",
            "IsSandbox": False,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
        }
        self.run_as_user_id = ""
        self.run_as_user_id = self.add_user("Integration User", "integration@example.com")
        run_as = self._records["User"][self.run_as_user_id]
        self.jwt_username = jwt_username or run_as["Username"]

    # -- test and demo helpers -------------------------------------------------------------

    def insert(self, sobject: str, fields: dict) -> str:
        """Seed a record as the API would create it, indexed for SOSL at once, not counted."""
        return self.create(sobject, fields, indexed_now=True)["id"]

    def records(self, sobject: str) -> list[dict]:
        """Copies of every live (not deleted) record of ``sobject``, as the REST API shows them."""
        with self.lock:
            obj = self.sobject(sobject)
            return [
                self.render(obj, rec)
                for rec in self._records[obj.name].values()
                if not rec.get("IsDeleted")
            ]

    def get(self, sobject: str, record_id: str) -> dict | None:
        with self.lock:
            obj = self.sobject(sobject)
            try:
                rec = self._records[obj.name].get(normalize(record_id))
            except InvalidId:
                return None
            if rec is None or rec.get("IsDeleted"):
                return None
            return self.render(obj, rec)

    def add_user(self, name: str, email: str, active: bool = True) -> str:
        """Add a User (Users cannot be created through the emulated API)."""
        first, _, last = name.rpartition(" ")
        with self.lock:
            taken = {u["Username"] for u in self._records["User"].values()}
            username, n = email, 1
            while username in taken:
                n += 1
                username = f"{email}.{n}"
            now = format_datetime(now_utc())
            user_id = new_id("005")
            record = self._blank(self.schema["User"])
            creator = self.run_as_user_id or user_id
            record.update(
                {
                    "Id": user_id,
                    "Username": username,
                    "FirstName": first or None,
                    "LastName": last,
                    "Name": name,
                    "Alias": (first[:1] + last)[:8].lower() or "user",
                    "Email": email,
                    "IsActive": active,
                    "TimeZoneSidKey": self.organization()["TimeZoneSidKey"],
                    "IsDeleted": False,
                    "CreatedDate": now,
                    "LastModifiedDate": now,
                    "SystemModstamp": now,
                    "CreatedById": creator,
                    "LastModifiedById": creator,
                }
            )
            self._store("User", record, indexed_now=True)
            return user_id

    def set_user_active(self, user_id: str, active: bool) -> None:
        with self.lock:
            record = dict(self._records["User"][normalize(user_id)])
            record["IsActive"] = active
            self._store("User", record, indexed_now=True)

    def user_by_username(self, username: str) -> dict | None:
        with self.lock:
            wanted = username.lower()
            users = self._records["User"].values()
            return next((dict(u) for u in users if u["Username"].lower() == wanted), None)

    def organization(self) -> dict:
        return self._records["Organization"][self.org_id]

    def set_restricted(self, sobject: str, field: str, restricted: bool) -> None:
        with self.lock:
            f = self._field(self.sobject(sobject), field)
            f.restricted = restricted
            self.schema_changed = now_utc()

    def add_field(self, sobject: str, name: str, type: str, **props: object) -> None:
        """Add a custom field (``Foo__c``); props use describe names, e.g. ``externalId=True``."""
        with self.lock:
            obj = self.sobject(sobject)
            if obj.field(name):
                raise ValueError(f"{obj.name} already has a field {name}")
            f = custom_field(name, type, props)
            obj.fields[f.name] = f
            obj.reindex()
            for rec in self._records[obj.name].values():
                rec[f.name] = f.default if f.type == "boolean" else None
            self.schema_changed = now_utc()

    # -- tokens and the API allocation ----------------------------------------------------

    @property
    def session_idle_seconds(self) -> float:
        return self._tokens.idle_seconds

    @session_idle_seconds.setter
    def session_idle_seconds(self, value: float) -> None:
        self._tokens.idle_seconds = value

    def issue_token(self, user_id: str | None = None) -> str:
        return self._tokens.issue(user_id or self.run_as_user_id)

    def check_token(self, token: str) -> bool:
        """True for a live token; each use resets its idle timer (sessions time out idle)."""
        return self._tokens.check(token)

    def revoke_tokens(self) -> None:
        """Every issued token becomes invalid (401 INVALID_SESSION_ID)."""
        self._tokens.revoke_all()

    @property
    def api_used(self) -> int:
        """Requests counted in the trailing 24 hours."""
        return self._allocation.used()

    @api_used.setter
    def api_used(self, value: int) -> None:
        self._allocation.set_used(value)

    def count_call(self) -> bool:
        """Count one request; False (and not counted) when the allocation is used up."""
        return self._allocation.take(self.api_max)

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

    # -- writes --------------------------------------------------------------------------------

    @staticmethod
    def _blank(obj: SObjectDef) -> dict:
        return {name: None for name in obj.fields}

    def _input(self, obj: SObjectDef, body: object, *, creating: bool) -> dict[str, object]:
        """Body -> {canonical field name: coerced value}, refusing unknown and read-only fields."""
        if not isinstance(body, dict):
            raise bad_request(
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {obj.name} from "
                f"{'START_ARRAY' if isinstance(body, list) else 'VALUE_STRING'} value",
            )
        changes: dict[str, object] = {}
        read_only: list[str] = []
        for key, raw in body.items():
            if key == "attributes":
                continue
            if key.lower() == "id":
                raise bad_request(
                    "INVALID_FIELD", "The Id field should not be specified in the sobject data."
                )
            f = obj.field(key)
            if f is None:
                rel = obj.relationship(key)
                if rel is not None and isinstance(raw, dict):
                    f, raw = rel, self._resolve_external_reference(rel, raw)
                else:
                    raise bad_request(
                        "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}"
                    )
            if not (f.createable if creating else f.updateable):
                read_only.append(f.name)
                continue
            changes[f.name] = coerce(f, raw)
        if read_only:
            raise bad_request(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(read_only)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                read_only,
            )
        return changes

    def _resolve_external_reference(self, rel: FieldDef, raw: dict) -> str:
        """``"Account": {"Ext__c": "A-42"}`` in a body -> the id of that Account."""
        keys = [k for k in raw if k != "attributes"]
        target = self.find_sobject(rel.reference_to[0]) if len(rel.reference_to) == 1 else None
        if target is None or len(keys) != 1:
            raise bad_request(
                "INVALID_FIELD", f"Cannot reference {rel.relationship_name} by external ID"
            )
        ext = target.field(keys[0])
        if ext is None or not (ext.external_id or ext.id_lookup):
            raise bad_request(
                "INVALID_FIELD",
                f"Field name provided, {keys[0]} is not an External ID or indexed field for "
                f"{target.name}",
            )
        matches = self.match_external(target, ext, raw[keys[0]])
        if not matches:
            raise bad_request(
                "INVALID_FIELD",
                f"Foreign key external ID: {raw[keys[0]]} not found for field {ext.name} in "
                f"entity {target.name}",
            )
        if len(matches) > 1:
            raise bad_request(
                "INVALID_FIELD",
                f"Foreign key external ID: {raw[keys[0]]} matches more than one record for "
                f"field {ext.name} in entity {target.name}",
            )
        return matches[0]["Id"]

    def match_external(self, obj: SObjectDef, f: FieldDef, value: object) -> list[dict]:
        """Live records whose external-ID field equals ``value`` (case-insensitive by default)."""
        if f.type == "id":
            try:
                wanted: object = normalize(str(value))
            except InvalidId:
                return []
            rec = self._records[obj.name].get(wanted)  # type: ignore[arg-type]
            return [rec] if rec and not rec.get("IsDeleted") else []
        if isinstance(value, str) and not f.case_sensitive:
            value = value.lower()
        found = []
        for rec in self._records[obj.name].values():
            stored = rec.get(f.name)
            if isinstance(stored, str) and not f.case_sensitive:
                stored = stored.lower()
            if stored == value and not rec.get("IsDeleted"):
                found.append(rec)
        return found

    def check_reference(self, f: FieldDef, value: str) -> str:
        """A lookup value -> canonical id, or the error Salesforce gives for it."""
        try:
            canonical = normalize(value)
        except InvalidId:
            raise bad_request(
                "MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name]
            ) from None
        target = self.object_for_id(canonical)
        if target not in f.reference_to:
            raise bad_request(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{f.label}: id value of incorrect type: {value}",
                [f.name],
            )
        if self.lookup(canonical) is None:
            raise bad_request("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        return canonical

    def _validate(self, obj: SObjectDef, changes: dict, merged: dict, *, creating: bool) -> None:
        missing = [
            f.name
            for f in obj.fields.values()
            if merged.get(f.name) is None
            and ((creating and f.required) or (f.name in changes and not f.nillable))
        ]
        if missing:
            raise bad_request(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        for name, value in changes.items():
            f = obj.fields[name]
            check_value(f, value)
            if f.type == "reference" and value is not None:
                merged[name] = self.check_reference(f, value)  # type: ignore[arg-type]
        owner = merged.get("OwnerId")
        if "OwnerId" in changes and owner is not None:
            user = self.lookup(owner)
            if user is not None and user[0] == "User" and not user[1]["IsActive"]:
                raise bad_request(
                    "INACTIVE_OWNER_OR_USER",
                    f"operation performed with inactive user [{owner}] as owner of "
                    f"{obj.name.lower()}",
                )

    def create(
        self,
        sobject: str,
        body: object,
        *,
        indexed_now: bool = False,
    ) -> dict:
        """Validate and insert; returns ``{"id","success":true,"errors":[]}``."""
        with self.lock:
            obj = self.sobject(sobject)
            if not obj.createable:
                raise bad_request(
                    "INVALID_TYPE_FOR_OPERATION", f"entity type cannot be inserted: {obj.name}"
                )
            changes = self._input(obj, body, creating=True)
            record = self._blank(obj)
            for f in obj.fields.values():
                if f.defaulted_on_create and f.default is not None:
                    record[f.name] = f.default
            if "OwnerId" in obj.fields:
                record["OwnerId"] = self.run_as_user_id
            record.update(changes)
            self._validate(obj, changes, record, creating=True)
            rules.apply(self, obj, record, changes, creating=True)
            now = format_datetime(now_utc())
            record["Id"] = new_id(obj.key_prefix)
            record.update(
                {
                    "IsDeleted": False,
                    "CreatedDate": now,
                    "LastModifiedDate": now,
                    "SystemModstamp": now,
                    "CreatedById": self.run_as_user_id,
                    "LastModifiedById": self.run_as_user_id,
                }
            )
            self._store(obj.name, record, indexed_now=indexed_now)
            return {"id": record["Id"], "success": True, "errors": []}

    def _existing(self, obj: SObjectDef, record_id: str, *, missing_code: str) -> dict:
        try:
            canonical = normalize(record_id)
        except InvalidId:
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {record_id}"
            ) from None
        rec = self._records[obj.name].get(canonical)
        if rec is None:
            if missing_code == "NOT_FOUND":
                raise not_found()
            raise ApiError(404, missing_code, "invalid cross reference id")
        if rec.get("IsDeleted"):
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        return rec

    def retrieve(
        self,
        sobject: str,
        record_id: str,
        fields: list[str] | None = None,
        version: str = DEFAULT_VERSION,
    ) -> dict:
        with self.lock:
            obj = self.sobject(sobject)
            rec = self._existing(obj, record_id, missing_code="NOT_FOUND")
            chosen = None
            if fields is not None:
                chosen = []
                for name in fields:
                    f = obj.field(name)
                    if f is None:
                        raise bad_request(
                            "INVALID_FIELD", f"No such column '{name}' on entity '{obj.name}'"
                        )
                    chosen.append(f)
            return self.render(obj, rec, chosen, version)

    def update(self, sobject: str, record_id: str, body: object) -> None:
        with self.lock:
            obj = self.sobject(sobject)
            if not obj.updateable:
                raise bad_request(
                    "INVALID_TYPE_FOR_OPERATION", f"entity type cannot be updated: {obj.name}"
                )
            current = self._existing(obj, record_id, missing_code="INVALID_CROSS_REFERENCE_KEY")
            changes = self._input(obj, body, creating=False)
            if obj.name == "Lead" and current.get("IsConverted"):
                raise bad_request(
                    "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", []
                )
            merged = {**current, **changes}
            self._validate(obj, changes, merged, creating=False)
            rules.apply(self, obj, merged, changes, creating=False, before=current)
            now = format_datetime(now_utc())
            merged.update(
                {
                    "LastModifiedDate": now,
                    "SystemModstamp": now,
                    "LastModifiedById": self.run_as_user_id,
                }
            )
            self._store(obj.name, merged)

    def delete(self, sobject: str, record_id: str) -> None:
        with self.lock:
            obj = self.sobject(sobject)
            if not obj.deletable:
                raise bad_request(
                    "INVALID_TYPE_FOR_OPERATION", f"entity type cannot be deleted: {obj.name}"
                )
            current = self._existing(obj, record_id, missing_code="INVALID_CROSS_REFERENCE_KEY")
            now = format_datetime(now_utc())
            gone = {**current, "IsDeleted": True, "LastModifiedDate": now, "SystemModstamp": now}
            self._store(obj.name, gone)

    def external_matches(
        self, sobject: str, field_name: str, value: str
    ) -> tuple[SObjectDef, FieldDef, object, list[dict]]:
        """(object, field, typed value, live matches) for an external-ID path; else 404."""
        obj = self.sobject(sobject)
        f = obj.field(field_name)
        if f is None or not f.external_id:
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {field_name}"
            )
        typed: object = value
        if f.type in NUMBER_TYPES:
            try:
                typed = int(value) if f.type == "int" else float(value)
            except ValueError:
                raise bad_request(
                    "MALFORMED_ID", f"{f.label}: invalid number: {value}", [f.name]
                ) from None
        return obj, f, typed, self.match_external(obj, f, typed)

    def upsert(
        self, sobject: str, field_name: str, value: str, body: object
    ) -> tuple[bool, str | list[str]]:
        """(created, id); several matches give (False, [ids]) for a 300 answer."""
        with self.lock:
            obj, f, typed, matches = self.external_matches(sobject, field_name, value)
            if not isinstance(body, dict):
                self._input(obj, body, creating=True)  # raises the parser error
                return False, []
            if any(k.lower() == f.name.lower() for k in body):
                raise bad_request(
                    "INVALID_FIELD",
                    f"The external ID field '{f.name}' should not be specified in the sobject "
                    "data; the value comes from the URL.",
                    [f.name],
                )
            if len(matches) > 1:
                return False, [m["Id"] for m in matches]
            if matches:
                self.update(obj.name, matches[0]["Id"], body)
                return False, matches[0]["Id"]
            return True, self.create(obj.name, {**body, f.name: typed})["id"]


class Transaction:
    """Handle given by ``Org.transaction()``: ``rollback()`` undoes the writes made so far."""

    def __init__(self, org: Org, savepoint: int) -> None:
        self._org = org
        self._savepoint = savepoint

    def rollback(self) -> None:
        self._org._undo(self._savepoint)
