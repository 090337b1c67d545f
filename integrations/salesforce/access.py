"""What the integration user can see and set, from describe: the one filter that Callbridge's
queries and writes pass their field names through.

Field-level security hides fields in real orgs, and a query or a write naming one is refused
(``INVALID_FIELD`` "No such column ..."). So names describe says the user cannot see (or set)
are left out, the call is still logged, and Health lists them. Describes are cached per client
and fetched again on use once ``DESCRIBE_TTL`` old; filtering reads only the cache (it costs no
request), and a refusal that names a field re-reads that object's describe so the one retry
(``retry_once``) goes without it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from integrations.errors import RemoteRejected
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.soql import api_name

log = logging.getLogger(__name__)
T = TypeVar("T")
Need = Literal["read", "create", "update"]

DESCRIBE_TTL = 3600.0  # seconds a describe is reused (each one costs an API request)
_REFUSED = re.compile(
    r"No such column '[^']+' on (?:entity '(?P<entity>\w+)'|sobject of type (?P<sobject>\w+))"
    r"|Didn't understand relationship '[^']+'"
)

_describes: weakref.WeakKeyDictionary[SalesforceClient, dict[str, tuple[float, dict[str, Any]]]]
_describes = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_noted: set[tuple[str, str]] = set()  # fields already logged as left out by this process


def describe(
    sf: SalesforceClient, sobject: str, *, max_age: float = DESCRIBE_TTL
) -> dict[str, Any]:
    """The object's describe, fetched once per client and reused for ``max_age`` seconds."""
    api_name(sobject)
    with _lock:
        cached = _describes.setdefault(sf, {}).get(sobject.lower())
    if cached is not None and time.monotonic() - cached[0] < max_age:
        return cached[1]
    result = sf.describe(sobject)
    with _lock:
        _describes.setdefault(sf, {})[sobject.lower()] = (time.monotonic(), result)
    return result


def _known(sf: SalesforceClient, sobject: str) -> dict[str, dict[str, Any]] | None:
    """The cached describe's fields by lower-cased name (a stale one is fetched again), or
    None when this client never read the object's describe."""
    with _lock:
        cached = _describes.get(sf, {}).get(sobject.lower())
    if cached is None:
        return None
    described = describe(sf, sobject)
    return {f["name"].lower(): f for f in described.get("fields", [])}


def _allows(spec: dict[str, Any] | None, need: Need) -> bool:
    if spec is None:
        return False
    return need == "read" or bool(spec.get("createable" if need == "create" else "updateable"))


def _relationship(fields: dict[str, dict[str, Any]], name: str) -> dict[str, Any] | None:
    wanted = name.lower()
    return next(
        (f for f in fields.values() if (f.get("relationshipName") or "").lower() == wanted), None
    )


def _path_visible(
    sf: SalesforceClient, fields: dict[str, dict[str, Any]] | None, path: str
) -> bool:
    """``Account.Name``: the lookup on this object and the field on the parent, where known."""
    top, _, child = path.partition(".")
    if fields is None:
        return True
    lookup = _relationship(fields, top)
    if lookup is None:
        return False
    targets = lookup.get("referenceTo") or []
    parent = _known(sf, targets[0]) if len(targets) == 1 else None
    return parent is None or child.lower() in parent


def visible(
    sf: SalesforceClient, sobject: str, names: Iterable[str], need: Need = "read"
) -> list[str]:
    """``names`` without those describe says the integration user cannot see (or, ``need``,
    create or update); parent paths (``Owner.Name``) are read-only by nature."""
    fields = _known(sf, sobject)
    kept, left_out = [], []
    for name in names:
        if "." in name:
            ok = _path_visible(sf, fields, name)
        else:
            ok = fields is None or _allows(fields.get(name.lower()), need)
        (kept if ok else left_out).append(name)
    _note(sobject, left_out, need)
    return kept


def settable(
    sf: SalesforceClient, sobject: str, values: dict[str, Any], *, creating: bool
) -> dict[str, Any]:
    """A write's fields without those the integration user cannot set. A relationship name
    with an external ID (``"Account": {"Ext__c": "A-1"}``) stands for its lookup field."""
    fields = _known(sf, sobject)
    if fields is None:
        return dict(values)
    need: Need = "create" if creating else "update"
    kept: dict[str, Any] = {}
    left_out = []
    for name, value in values.items():
        spec = fields.get(name.lower())
        if spec is None and isinstance(value, dict):
            spec = _relationship(fields, name)
        if _allows(spec, need):
            kept[name] = value
        else:
            left_out.append(name)
    _note(sobject, left_out, need)
    return kept


def _note(sobject: str, names: list[str], need: Need) -> None:
    fresh = [n for n in names if (sobject, n) not in _noted]
    if fresh:
        _noted.update((sobject, n) for n in fresh)
        log.warning(
            "salesforce.fields_left_out",
            extra={"sobject": sobject, "fields": fresh, "need": need},
        )


def refresh_after(sf: SalesforceClient, exc: Exception, *sobjects: str) -> bool:
    """When Salesforce refused a field it says does not exist, re-read the describe of the
    object it names (else of ``sobjects``) and say True: the caller retries once, filtering
    again. Other errors: False."""
    if not isinstance(exc, RemoteRejected) or exc.error_code != "INVALID_FIELD":
        return False
    bodies = exc.body if isinstance(exc.body, list) else [exc.body]
    messages = [str(b.get("message", "")) if isinstance(b, dict) else str(b) for b in bodies]
    match = next((m for m in map(_REFUSED.search, messages) if m), None)
    if match is None:
        return False
    named = match["entity"] or match["sobject"]
    if named == "Name":  # a polymorphic lookup's parent (``Who.Title``): describe cannot tell
        return False
    for sobject in [named] if named else sobjects:
        describe(sf, sobject, max_age=0)
    log.info("salesforce.describe_refreshed", extra={"sobjects": [named] if named else sobjects})
    return True


def retry_once(sf: SalesforceClient, attempt: Callable[[], T], *sobjects: str) -> T:
    """``attempt()`` (which filters its names with ``visible``); once more after a field
    refusal has refreshed describe (``refresh_after``)."""
    try:
        return attempt()
    except RemoteRejected as exc:
        if not refresh_after(sf, exc, *sobjects):
            raise
    return attempt()
