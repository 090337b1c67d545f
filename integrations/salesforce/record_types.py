"""The record types Callbridge gives the Leads, Contacts and Opportunities it creates.

``LEAD_RECORD_TYPE``, ``CONTACT_RECORD_TYPE`` and ``OPPORTUNITY_RECORD_TYPE`` name one by its
developer name; empty, Salesforce gives the integration user's default and Callbridge sends
nothing. The picklist values Callbridge offers and checks for an object are those of the record
type its new records get (``narrowed``). A name is resolved to its id once per client (a SOQL
query on ``RecordType``) and a record type's picklist values are read with it (one UI API
request), both kept ``TTL`` seconds. A name the org lacks, or whose record type is inactive or
not given to the integration user, is ``RecordTypeMissing``: a configuration error that Health
shows, and that makes a create wait (``NotConfigured``) instead of making a record of the wrong
type or failing for good.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from integrations.errors import NotConfigured, RemoteRejected
from integrations.salesforce import access
from integrations.salesforce.client import SalesforceClient
from integrations.settings import Settings

SETTINGS = {
    "Lead": "lead_record_type",
    "Contact": "contact_record_type",
    "Opportunity": "opportunity_record_type",
}
TTL = 3600.0  # seconds a resolved record type (and its picklist values) is reused
MISSING_TTL = 30.0  # a missing one is asked again this soon: the admin may be fixing it now
QUERY = (
    "SELECT Id, DeveloperName, Name, IsActive FROM RecordType "
    "WHERE SobjectType = {} AND DeveloperName = {} LIMIT 1"
)
ACTIVE_QUERY = (
    "SELECT DeveloperName FROM RecordType WHERE SobjectType = {} AND IsActive = true "
    "ORDER BY DeveloperName LIMIT 50"
)
PICKLISTS = ("picklist", "multipicklist")


class RecordTypeMissing(NotConfigured):
    """A record type setting names one the org does not let Callbridge use."""


@dataclass(frozen=True)
class RecordType:
    sobject: str
    id: str
    developer_name: str
    name: str
    # Each picklist field's values for this record type, and its default value (or None).
    picklists: dict[str, tuple[tuple[str, ...], str | None]]

    def default(self, field: str) -> str | None:
        return self.picklists.get(field, ((), None))[1]


def setting_name(sobject: str) -> str:
    """The environment variable that names ``sobject``'s record type."""
    return SETTINGS[sobject].upper()


def configured(settings: Settings, sobject: str) -> str:
    """The developer name set for ``sobject`` ("" when none: the org's default)."""
    attribute = SETTINGS.get(sobject)
    return str(getattr(settings, attribute) or "").strip() if attribute else ""


_cache: weakref.WeakKeyDictionary[
    SalesforceClient, dict[tuple[str, str], tuple[float, RecordType | RecordTypeMissing]]
] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def resolve(sf: SalesforceClient, sobject: str, *, max_age: float = TTL) -> RecordType | None:
    """The configured record type of ``sobject`` (None: none configured); raises
    ``RecordTypeMissing`` when the org does not let Callbridge use it."""
    name = configured(sf.settings, sobject)
    if not name:
        return None
    return _cached(sf, (sobject, name), lambda: _fetch(sf, sobject, name), max_age)


def default_type(
    sf: SalesforceClient, sobject: str, described: dict[str, Any], *, max_age: float = TTL
) -> RecordType | None:
    """The integration user's default record type in ``described`` (None: Master, which
    narrows nothing): what Salesforce gives the records created without one."""
    infos = described.get("recordTypeInfos") or []
    info = next((i for i in infos if i.get("defaultRecordTypeMapping")), None)
    if info is None or info.get("master") or not info.get("recordTypeId"):
        return None
    rt_id = str(info["recordTypeId"])

    def fetch() -> RecordType:
        try:
            picklists = _picklists(sf, sobject, rt_id)
        except RemoteRejected:  # an object the UI API does not serve: its values stay whole
            picklists = {}
        return RecordType(
            sobject, rt_id, str(info.get("developerName")), str(info.get("name")), picklists
        )

    return _cached(sf, (sobject, f"default {rt_id}"), fetch, max_age)


def _cached(
    sf: SalesforceClient,
    key: tuple[str, str],
    fetch: Callable[[], RecordType],
    max_age: float,
) -> RecordType:
    with _lock:
        hit = _cache.get(sf, {}).get(key)
    if hit is not None:
        missing = isinstance(hit[1], RecordTypeMissing)
        if time.monotonic() - hit[0] < (MISSING_TTL if missing else max_age):
            if isinstance(hit[1], RecordTypeMissing):
                raise hit[1]
            return hit[1]
    try:
        found: RecordType | RecordTypeMissing = fetch()
    except RecordTypeMissing as exc:
        found = exc
    with _lock:
        _cache.setdefault(sf, {})[key] = (time.monotonic(), found)
    if isinstance(found, RecordTypeMissing):
        raise found
    return found


def _fetch(sf: SalesforceClient, sobject: str, name: str) -> RecordType:
    setting = f"{setting_name(sobject)}={name}"
    where = f"Setup → Object Manager → {sobject} → Record Types"
    rows = sf.query(QUERY, sobject, name)
    if not rows:
        active = [r["DeveloperName"] for r in sf.query(ACTIVE_QUERY, sobject)]
        choices = f"the active ones are {', '.join(active)}" if active else "it has none active"
        raise RecordTypeMissing(
            f"{setting}: the org has no {sobject} record type with that developer name "
            f"({choices}). Set {setting_name(sobject)} to the Record Type Name shown in "
            f"{where}, or empty for the org's default"
        )
    row = rows[0]
    if not row.get("IsActive"):
        raise RecordTypeMissing(
            f"{setting}: the {sobject} record type {row.get('Name') or name} is inactive, so "
            f"Salesforce refuses records of it. Activate it in {where}, or choose another"
        )
    infos = access.describe(sf, sobject).get("recordTypeInfos") or []
    info = next((i for i in infos if i.get("recordTypeId") == row["Id"]), None)
    if info is not None and not info.get("available"):
        raise RecordTypeMissing(
            f"{setting}: the integration user's profile is not given the {sobject} record "
            f"type {row.get('Name') or name}, so Salesforce refuses records of it. Add it in "
            "Setup → Profiles → (the integration user's profile) → Record Type Settings"
        )
    picklists = _picklists(sf, sobject, row["Id"])
    return RecordType(sobject, row["Id"], row["DeveloperName"], row.get("Name") or "", picklists)


def _picklists(
    sf: SalesforceClient, sobject: str, record_type_id: str
) -> dict[str, tuple[tuple[str, ...], str | None]]:
    doc = sf.picklist_values(sobject, record_type_id)
    picklists = {}
    for field, values in (doc.get("picklistFieldValues") or {}).items():
        default = values.get("defaultValue") or {}
        picklists[field] = (
            tuple(str(v["value"]) for v in values.get("values") or []),
            default.get("value") if isinstance(default, dict) else None,
        )
    return picklists


def forget_if_refused(sf: SalesforceClient, sobject: str, exc: RemoteRejected) -> None:
    """Salesforce refused the record type it was sent (deactivated or taken from the profile
    since it was resolved): the next create resolves it again, and waits if it is gone."""
    bodies = exc.body if isinstance(exc.body, list) else [exc.body]
    for body in bodies:
        fields = body.get("fields") if isinstance(body, dict) else None
        if exc.error_code == "INVALID_CROSS_REFERENCE_KEY" and "RecordTypeId" in (fields or []):
            with _lock:
                _cache.get(sf, {}).pop((sobject, configured(sf.settings, sobject)), None)
            return


def for_create(sf: SalesforceClient, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` of a new record with the configured record type, and for a Lead a Status the
    record type offers (its default) when none is set."""
    rt = resolve(sf, sobject)
    if rt is None:
        return fields
    out = {"RecordTypeId": rt.id, **fields}  # a mapping that names one keeps it
    if sobject == "Lead" and not out.get("Status") and rt.default("Status"):
        out["Status"] = rt.default("Status")
    return out


def narrowed(sf: SalesforceClient, sobject: str, described: dict[str, Any]) -> dict[str, Any]:
    """``described`` with each picklist's values those of the record type Callbridge creates
    ``sobject`` with: the configured one, else the integration user's default (describe lists
    every record type's values together)."""
    rt = resolve(sf, sobject) if sobject in SETTINGS else None
    if rt is None:
        rt = default_type(sf, sobject, described)
    if rt is None:
        return described
    fields = []
    for spec in described.get("fields", []):
        offered = rt.picklists.get(spec.get("name", ""))
        if offered is not None and spec.get("type") in PICKLISTS:
            labels = {v.get("value"): v.get("label") for v in spec.get("picklistValues") or []}
            values, default = offered
            entries = [
                {
                    "active": True,
                    "defaultValue": value == default,
                    "label": labels.get(value) or value,
                    "validFor": None,
                    "value": value,
                }
                for value in values
            ]
            spec = {**spec, "picklistValues": entries}
        fields.append(spec)
    return {**described, "fields": fields}
