"""Record types, as Salesforce has them: per object, each narrowing the object's picklists.

* ``RecordType`` is a queryable, read-only sObject (``012`` ids): ``Id``, ``Name``,
  ``DeveloperName``, ``SobjectType``, ``IsActive``, ``Description``.
* An object gains ``RecordTypeId`` (a lookup to ``RecordType``) with its first record type; a
  create that does not set it gets the integration user's default record type. A create or
  update naming an unknown, inactive or other object's record type (or the Master one, which the
  profile is not given once the object has record types) is refused with
  ``INVALID_CROSS_REFERENCE_KEY`` "Record Type ID: this ID value isn't valid for the user: …".
* A record type lists the values of a picklist it offers; a restricted picklist refuses a value
  the field has but the record's record type does not (``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``,
  the same words as for a value the field lacks), and a create without the field gets the record
  type's default value.
* Describe's ``recordTypeInfos`` lists the object's record types and Master
  (``012000000000000AAA``); every object has Master, which is the default when it has no other.
* The UI API gives a record type's values (``ui-api/object-info/{obj}/picklist-values/{rtId}``
  and ``…/{rtId}/{field}``), the way a client learns them: describe lists the field's values for
  every record type together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ..ids import InvalidId, new_id, normalize
from .admin_rules import AdminSetup
from .errors import ApiError, bad_request, not_found
from .schema import FieldDef, SObjectDef
from .values import format_datetime, now_utc

MASTER_ID = "012000000000000AAA"
PREFIX = "012"


@dataclass
class RecordType:
    id: str
    sobject: str
    developer_name: str
    label: str
    active: bool = True
    default: bool = False  # the integration user's profile default for the object
    picklists: dict[str, tuple[str, ...]] = field(default_factory=dict)  # field -> values offered
    defaults: dict[str, str] = field(default_factory=dict)  # field -> default value
    description: str | None = None


def _field(name: str, type_: str, label: str, length: int = 0, **kw: object) -> FieldDef:
    return FieldDef(
        name=name, type=type_, label=label, length=length, createable=False, updateable=False, **kw
    )  # type: ignore[arg-type]


def sobject() -> SObjectDef:
    """``RecordType`` as the API shows it: queryable, never written through it."""
    user = ("User",)
    fields = [
        _field("Id", "id", "Record Type ID", nillable=False, id_lookup=True),
        _field("Name", "string", "Record Type Name", 80, nillable=False, name_field=True),
        _field("DeveloperName", "string", "Record Type Name", 80, nillable=False),
        _field("NamespacePrefix", "string", "Namespace Prefix", 15),
        _field("Description", "string", "Description", 255),
        _field("BusinessProcessId", "reference", "Business Process ID"),
        _field("SobjectType", "picklist", "SObject Type Name", 40, nillable=False),
        _field("IsActive", "boolean", "Active", nillable=False, default=False),
        _field("CreatedById", "reference", "Created By ID", reference_to=user),
        _field("CreatedDate", "datetime", "Created Date", nillable=False),
        _field("LastModifiedById", "reference", "Last Modified By ID", reference_to=user),
        _field("LastModifiedDate", "datetime", "Last Modified Date", nillable=False),
        _field("SystemModstamp", "datetime", "System Modstamp", nillable=False),
    ]
    return SObjectDef(
        "RecordType",
        "Record Type",
        "Record Types",
        PREFIX,
        {f.name: f for f in fields},
        createable=False,
        updateable=False,
        deletable=False,
        searchable=False,
        name_fields=("Name",),
    )


def record_type_field() -> FieldDef:
    return FieldDef(
        name="RecordTypeId",
        type="reference",
        label="Record Type ID",
        reference_to=("RecordType",),
        relationship_name="RecordType",
        defaulted_on_create=True,
    )


def invalid(value: object) -> ApiError:
    return bad_request(
        "INVALID_CROSS_REFERENCE_KEY",
        f"Record Type ID: this ID value isn't valid for the user: {value}",
        ["RecordTypeId"],
    )


def _entry(value: str) -> dict:
    return {"attributes": None, "label": value, "validFor": [], "value": value}


class RecordTypeSetup(AdminSetup):
    """The org's record types (Setup → Object Manager → Record Types, as tests and profiles use
    it), checked by :mod:`.lifecycle` on every API save."""

    def __init__(self, sosl_delay: float) -> None:
        super().__init__(sosl_delay)
        self.record_types: dict[str, RecordType] = {}  # by id
        self.schema["RecordType"] = sobject()
        self._by_prefix[PREFIX] = "RecordType"
        self._records["RecordType"] = {}

    # -- Setup ---------------------------------------------------------------------------------

    def add_record_type(
        self,
        sobject: str,
        developer_name: str,
        label: str | None = None,
        *,
        picklists: dict[str, list[str] | tuple[str, ...]] | None = None,
        defaults: dict[str, str] | None = None,
        default: bool = False,
        active: bool = True,
    ) -> str:
        """A record type on ``sobject`` offering ``picklists`` (field -> values; a field left out
        offers all of its values); ``default``: the integration user's default for the object.
        A required picklist without a default in ``defaults`` defaults to its first value."""
        with self.lock:
            obj = self.sobject(sobject)
            if any(
                r.sobject == obj.name and r.developer_name == developer_name
                for r in self.record_types.values()
            ):
                raise ValueError(f"{obj.name} already has a record type {developer_name}")
            offered: dict[str, tuple[str, ...]] = {}
            chosen: dict[str, str] = {}
            for name, values in (picklists or {}).items():
                f = self._field(obj, name)
                unknown = [v for v in values if v not in f.picklist]
                if f.type not in ("picklist", "multipicklist") or unknown:
                    raise ValueError(f"{obj.name}.{f.name} has no values {unknown or values}")
                offered[f.name] = tuple(values)
            for name, value in (defaults or {}).items():
                f = self._field(obj, name)
                if value not in offered.get(f.name, f.picklist):
                    raise ValueError(f"{value!r} is not a value of {obj.name}.{f.name}")
                chosen[f.name] = value
            for name, values in offered.items():
                f = obj.fields[name]
                if name not in chosen and values and (f.default in values or not f.nillable):
                    chosen[name] = f.default if f.default in values else values[0]  # type: ignore[assignment]
            if "RecordTypeId" not in obj.fields:
                obj.fields["RecordTypeId"] = record_type_field()
                obj.reindex()
                for rec in self._records[obj.name].values():
                    rec["RecordTypeId"] = None  # older records keep Master
            if default:
                for other in self.record_types.values():
                    if other.sobject == obj.name:
                        other.default = False
            rt = RecordType(
                id=new_id(PREFIX),
                sobject=obj.name,
                developer_name=developer_name,
                label=label or developer_name.replace("_", " "),
                active=active,
                default=default,
                picklists=offered,
                defaults=chosen,
            )
            self.record_types[rt.id] = rt
            self._store_record_type(rt)
            self.schema_changed = now_utc()
            return rt.id

    def add_picklist_values(self, sobject: str, field_name: str, values: list[str]) -> None:
        """New values of a picklist (Setup → Fields & Relationships → Values → New); record
        types offer them only once they list them."""
        with self.lock:
            f = self._field(self.sobject(sobject), field_name)
            f.picklist = (*f.picklist, *(v for v in values if v not in f.picklist))
            self.schema_changed = now_utc()

    def set_record_type_active(self, record_type_id: str, active: bool) -> None:
        with self.lock:
            rt = self.record_types[normalize(record_type_id)]
            rt.active = active
            if not active:
                rt.default = False
            self._store_record_type(rt)
            self.schema_changed = now_utc()

    def _store_record_type(self, rt: RecordType) -> None:
        now = format_datetime(now_utc())
        before = self._records["RecordType"].get(rt.id)
        self._store(
            "RecordType",
            {
                "Id": rt.id,
                "Name": rt.label,
                "DeveloperName": rt.developer_name,
                "NamespacePrefix": None,
                "Description": rt.description,
                "BusinessProcessId": None,
                "SobjectType": rt.sobject,
                "IsActive": rt.active,
                "CreatedById": self.run_as_user_id,
                "CreatedDate": before["CreatedDate"] if before else now,
                "LastModifiedById": self.run_as_user_id,
                "LastModifiedDate": now,
                "SystemModstamp": now,
            },
            indexed_now=True,
        )

    # -- what the API sees ---------------------------------------------------------------------

    run_as_user_id: str

    def record_types_of(self, sobject: str) -> list[RecordType]:
        return sorted(
            (r for r in self.record_types.values() if r.sobject == sobject),
            key=lambda r: r.label.lower(),
        )

    def default_record_type(self, sobject: str) -> RecordType | None:
        """The integration user's default; None: Master."""
        return next((r for r in self.record_types_of(sobject) if r.default and r.active), None)

    def record_type_infos(self, sobject: str, version: str) -> list[dict]:
        """Describe's ``recordTypeInfos``: the object's record types, then Master."""
        base = f"/services/data/v{version}/sobjects/{sobject}/describe/layouts"
        own = self.record_types_of(sobject)
        default = self.default_record_type(sobject)
        infos = [
            {
                "active": r.active,
                "available": r.active,
                "defaultRecordTypeMapping": r is default,
                "developerName": r.developer_name,
                "master": False,
                "name": r.label,
                "recordTypeId": r.id,
                "urls": {"layout": f"{base}/{r.id}"},
            }
            for r in own
        ]
        infos.append(
            {
                "active": True,
                "available": not own,  # the profile is given the object's record types instead
                "defaultRecordTypeMapping": default is None,
                "developerName": "Master",
                "master": True,
                "name": "Master",
                "recordTypeId": MASTER_ID,
                "urls": {"layout": f"{base}/{MASTER_ID}"},
            }
        )
        return infos

    def check_record_type(
        self, obj: SObjectDef, record: dict, changes: dict, *, creating: bool
    ) -> None:
        """Before a save is validated: the record type named (or the default one on create)
        checked, and its picklist defaults applied on create."""
        if "RecordTypeId" not in obj.fields:
            return
        if "RecordTypeId" in changes:
            record["RecordTypeId"] = self._valid_record_type(obj, changes["RecordTypeId"])
        elif creating:
            default = self.default_record_type(obj.name)
            record["RecordTypeId"] = default.id if default else None
        rt = self.record_types.get(record.get("RecordTypeId") or "")
        if creating and rt is not None:
            for name, value in rt.defaults.items():
                if name not in changes:
                    record[name] = value

    def _valid_record_type(self, obj: SObjectDef, value: object) -> str | None:
        if value is None:
            raise invalid(value)  # a record keeps a record type once the object has them
        try:
            canonical = normalize(str(value))
        except InvalidId:
            raise bad_request(
                "MALFORMED_ID",
                f"Record Type ID: id value of incorrect type: {value}",
                ["RecordTypeId"],
            ) from None
        rt = self.record_types.get(canonical)
        if rt is None or rt.sobject != obj.name or not rt.active:
            raise invalid(value)
        return canonical

    def check_record_type_values(self, obj: SObjectDef, record: dict, changes: dict) -> None:
        """A restricted picklist's changed value must be one the record's record type offers."""
        rt = self.record_types.get(record.get("RecordTypeId") or "")
        if rt is None:
            return
        for name, values in rt.picklists.items():
            f = obj.fields[name]
            value = changes.get(name)
            if not f.restricted or not isinstance(value, str):
                continue
            chosen = value.split(";") if f.type == "multipicklist" else [value]
            for item in chosen:
                if item not in values:
                    raise bad_request(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{f.label}: bad value for restricted picklist field: {item}",
                        [f.name],
                    )

    # -- the UI API ----------------------------------------------------------------------------

    def picklist_values(self, sobject: str, record_type_id: str, version: str) -> dict:
        """``GET ui-api/object-info/{obj}/picklist-values/{rtId}``: each picklist field the user
        can see, with the values the record type offers and its default."""
        obj = self.sobject(sobject)
        try:
            canonical = normalize(record_type_id)
        except InvalidId:
            raise not_found() from None
        rt = self.record_types.get(canonical)
        if canonical != MASTER_ID and (rt is None or rt.sobject != obj.name):
            raise not_found()
        base = f"/services/data/v{version}/ui-api/object-info/{obj.name}/picklist-values/"
        fields = {}
        for f in self.security.fields(obj):
            if f.type not in ("picklist", "multipicklist"):
                continue
            values = rt.picklists.get(f.name, f.picklist) if rt else f.picklist
            default = rt.defaults.get(f.name, f.default) if rt else f.default
            doc = {
                "controllerValues": {},
                "defaultValue": _entry(default) if default in values else None,  # type: ignore[arg-type]
                "url": f"{base}{canonical}/{f.name}",
                "values": [_entry(v) for v in values],
            }
            fields[f.name] = {**doc, "eTag": _etag(doc)}
        return {"eTag": _etag(fields), "picklistFieldValues": fields}


def _etag(doc: object) -> str:
    return hashlib.md5(json.dumps(doc, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
