"""The one way Callbridge talks to Salesforce: simple-salesforce over a metered session.

Every request passes through a response hook that counts it (the org's daily API allocation is
scarce) and reads ``Sforce-Limit-Info``. Library and network errors become our error tree:
``RemoteUnavailable`` (retry), ``RemoteRejected`` (park, body verbatim). The library blocks, so
async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession
from simple_salesforce.format import format_soql

from integrations.errors import RemoteRejected, RemoteUnavailable, SessionExpired
from integrations.salesforce.auth import Token, fetch_token
from integrations.salesforce.soql import MAX_RESULTS, sosl_phone_search, sosl_phones_search
from integrations.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Retrying these can succeed: locks clear, servers come back, the rolling 24 h window moves on.
TRANSIENT_CODES = {
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "REQUEST_LIMIT_EXCEEDED",
    "QUERY_TIMEOUT",
    "UNKNOWN_EXCEPTION",
}
COLLECTION_SIZE = 200  # records in one sObject Collections request (Salesforce's limit)
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass
class Meter:
    """Requests made on behalf of one job (set per job through ``current_meter``)."""

    requests: int = 0


current_meter: ContextVar[Meter | None] = ContextVar("salesforce_meter", default=None)


@dataclass
class Usage:
    """The org's rolling 24 h API usage, as the last response reported it."""

    used: int = 0
    max: int = 0
    total_requests: int = 0  # made by this process
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ratio(self) -> float:
        return self.used / self.max if self.max else 0.0


class _Session(requests.Session):
    """A session with a default timeout: several library methods cannot pass one."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout
        self.headers["Sforce-Call-Options"] = "client=callbridge"

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


class SalesforceClient:
    """Typed operations Callbridge needs, each costing as few API requests as possible."""

    def __init__(self, settings: Settings, token_source: Callable[[], Token] | None = None) -> None:
        self._settings = settings
        self._token_source = token_source or (lambda: fetch_token(settings))
        self._session = _Session(settings.salesforce_timeout_seconds)
        self._session.hooks["response"].append(self._on_response)
        self._sf: Salesforce | None = None
        self._instance_url = ""
        self._login_lock = threading.Lock()
        self.usage = Usage()

    # -- plumbing ---------------------------------------------------------------------------

    def _on_response(self, response: requests.Response, *_: Any, **__: Any) -> None:
        if "/services/data/" not in response.url:
            return
        with self.usage.lock:
            self.usage.total_requests += 1
            match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
            if match:
                self.usage.used, self.usage.max = int(match[1]), int(match[2])
        meter = current_meter.get()
        if meter is not None:
            meter.requests += 1

    def _connect(self, stale: Salesforce | None = None) -> Salesforce:
        with self._login_lock:
            if self._sf is None or self._sf is stale:
                token = self._token_source()
                self._instance_url = token.instance_url.rstrip("/")
                self._sf = Salesforce(
                    instance_url=token.instance_url,
                    session_id=token.access_token,
                    session=self._session,
                    version=self._settings.salesforce_api_version,
                )
            return self._sf

    def _call(self, operation: Callable[[Salesforce], T]) -> T:
        """Run one library call; on ``INVALID_SESSION_ID`` log in again once and replay."""
        sf = self._sf or self._connect()
        try:
            try:
                return operation(sf)
            except SalesforceExpiredSession:
                log.info("salesforce.session_expired")
                sf = self._connect(stale=sf)
                try:
                    return operation(sf)
                except SalesforceExpiredSession as exc:
                    raise SessionExpired("salesforce", 401, exc.content) from exc
        except SalesforceError as exc:
            raise _translate(exc) from exc
        except requests.RequestException as exc:
            # The request may have reached Salesforce and taken effect: the caller must check
            # before creating again.
            raise RemoteUnavailable(
                "salesforce", None, f"{type(exc).__name__}: {exc}", ambiguous=True
            ) from exc

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()

    # -- operations -------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """What this client was made with (the record types to create with, among others)."""
        return self._settings

    @property
    def instance_url(self) -> str:
        """The org's instance, known once we hold a token (record links: ``links.record_link``)."""
        return self._instance_url

    def search_phone(
        self, e164: str, returning: dict[str, list[str]] | None = None
    ) -> list[dict[str, Any]]:
        """Records whose phone fields hold this number (SOSL; one request). Fields may be parent
        paths (``Owner.Name``), as in SOQL: they come back nested (``{"Owner": {"Name": ...}}``,
        or ``None`` when the lookup is empty)."""
        return self._search(sosl_phone_search(e164, returning))

    def search_phones(
        self, numbers: list[str], returning: dict[str, list[str]]
    ) -> list[dict[str, Any]] | None:
        """Records whose phone fields hold any of these numbers (``soql.phone_groups`` made
        them one group), in one request; None when rows may have been cut (an object's rows
        reached its share of what one search returns): then each number is searched alone."""
        limit = MAX_RESULTS // max(len(returning), 1)
        records = self._search(sosl_phones_search(numbers, returning, limit=limit))
        per_object = Counter(record.get("attributes", {}).get("type") for record in records)
        if len(records) >= MAX_RESULTS or any(n >= limit for n in per_object.values()):
            return None
        return records

    def _search(self, statement: str) -> list[dict[str, Any]]:
        result = self._call(lambda sf: sf.search(statement))
        return [_plain(record) for record in result.get("searchRecords", [])]

    def query(self, soql: str, *args: Any, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Rows of a SELECT whose values are escaped by ``format_soql`` (one request per page);
        ``include_deleted``: the recycle bin and merged records too (``queryAll``)."""
        statement = format_soql(soql, *args) if args else soql
        result = self._call(lambda sf: sf.query_all(statement, include_deleted=include_deleted))
        return [_plain(record) for record in result.get("records", [])]

    @property
    def _write_headers(self) -> dict[str, str]:
        """``SALESFORCE_DUPLICATE_ALLOW_SAVE``: save past duplicate rules that only alert."""
        if self._settings.salesforce_duplicate_allow_save:
            return {"Sforce-Duplicate-Rule-Header": "allowSave=true"}
        return {}

    def create(self, sobject: str, fields: dict[str, Any]) -> str:
        """Create a record and return its id."""
        headers = self._write_headers
        result = self._call(lambda sf: getattr(sf, sobject).create(fields, headers=headers))
        return str(result["id"])

    def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        headers = self._write_headers
        self._call(lambda sf: getattr(sf, sobject).update(record_id, fields, headers=headers))

    def create_many(self, sobject: str, records: list[dict[str, Any]]) -> list[Outcome]:
        """Create up to ``COLLECTION_SIZE`` records in one request (sObject Collections, not all
        or none): each record's own outcome, in order."""
        body = [{"attributes": {"type": sobject}, **fields} for fields in records]
        return self._collection("POST", body)

    def upsert(self, sobject: str, field: str, value: str, fields: dict[str, Any]) -> str:
        """Create or update the record whose External ID ``field`` is ``value``; its id. Made
        twice (a retry after a lost answer), it is still one record."""
        path = f"sobjects/{sobject}/{field}/{quote(value, safe='')}"
        headers = self._write_headers
        result = self._call(
            lambda sf: sf.restful(path, method="PATCH", json=fields, headers=headers)
        )
        if not isinstance(result, dict) or not result.get("id"):
            raise RemoteUnavailable("salesforce", None, result, "an upsert answered without an id")
        return str(result["id"])

    def upsert_many(
        self, sobject: str, field: str, records: list[tuple[str, dict[str, Any]]]
    ) -> list[Outcome]:
        """Upsert up to ``COLLECTION_SIZE`` records on External ID ``field`` in one request."""
        body = [{"attributes": {"type": sobject}, field: value, **f} for value, f in records]
        return self._collection("PATCH", body, f"composite/sobjects/{sobject}/{field}")

    def update_many(self, sobject: str, changes: list[tuple[str, dict[str, Any]]]) -> list[Outcome]:
        """Update up to ``COLLECTION_SIZE`` records in one request; each record's outcome."""
        body = [{"attributes": {"type": sobject}, "id": rid, **fields} for rid, fields in changes]
        return self._collection("PATCH", body)

    def _collection(
        self, method: str, records: list[dict[str, Any]], path: str = "composite/sobjects"
    ) -> list[Outcome]:
        if not 0 < len(records) <= COLLECTION_SIZE:
            raise ValueError(f"a collection holds 1 to {COLLECTION_SIZE} records")
        payload = {"allOrNone": False, "records": records}
        headers = self._write_headers
        result = self._call(
            lambda sf: sf.restful(path, method=method, json=payload, headers=headers)
        )
        if not isinstance(result, list) or len(result) != len(records):
            raise RemoteUnavailable(
                "salesforce", None, result, "a collection's answer does not match"
            )
        return [Outcome.from_json(item) for item in result]

    def describe(self, sobject: str) -> dict[str, Any]:
        """The object's describe (fields, types, picklist values); callers cache it."""
        return _plain(self._call(lambda sf: getattr(sf, sobject).describe()))

    def picklist_values(self, sobject: str, record_type_id: str) -> dict[str, Any]:
        """Each picklist field's values for one record type (UI API; one request)."""
        path = (
            f"ui-api/object-info/{quote(sobject, safe='')}/picklist-values/"
            f"{quote(record_type_id, safe='')}"
        )
        return _plain(self._call(lambda sf: sf.restful(path)))

    def limits(self) -> dict[str, Any]:
        """The org's limits (``DailyApiRequests``: ``Max``, ``Remaining``); one request."""
        return _plain(self._call(lambda sf: sf.limits()))

    def get(self, sobject: str, record_id: str, fields: list[str] | None = None) -> dict[str, Any]:
        params = {"fields": ",".join(fields)} if fields else None
        return _plain(self._call(lambda sf: getattr(sf, sobject).get(record_id, params=params)))


@dataclass(frozen=True)
class Outcome:
    """One record's result in an sObject Collections request: its id, or the error it met
    (``RemoteRejected`` or, for a lock or an outage, ``RemoteUnavailable``; body verbatim)."""

    id: str | None
    error: RemoteRejected | RemoteUnavailable | None
    row: dict[str, Any] | None = None  # a look-up's row (``WriteBatcher.find``)
    records: list[dict[str, Any]] | None = None  # a phone search's (``WriteBatcher.search``)

    @classmethod
    def from_json(cls, item: Any) -> Outcome:
        if isinstance(item, dict) and item.get("success"):
            return cls(str(item.get("id")), None)
        errors = item.get("errors") if isinstance(item, dict) else None
        body = errors or [{"statusCode": "UNKNOWN_EXCEPTION", "message": repr(item)[:500]}]
        error = RemoteRejected("salesforce", 400, body)
        if error.error_code in TRANSIENT_CODES:
            return cls(None, RemoteUnavailable("salesforce", 400, body))
        return cls(None, error)


def _plain(record: Any) -> dict[str, Any]:
    """Plain JSON-able dicts and lists (the library returns OrderedDicts)."""
    if isinstance(record, dict):
        return {key: _plain(value) for key, value in record.items()}
    if isinstance(record, list):
        return [_plain(item) for item in record]  # type: ignore[return-value]
    return record


def _translate(exc: SalesforceError) -> Exception:
    body = exc.content
    status = exc.status
    error = RemoteRejected("salesforce", status, body)
    code = error.error_code
    if status >= 500 or code in TRANSIENT_CODES:
        return RemoteUnavailable("salesforce", status, body)
    return error
