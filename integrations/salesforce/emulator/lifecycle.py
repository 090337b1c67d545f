"""A record's life through the API: create, retrieve, update, delete and upsert.

Each write body is checked as Salesforce checks it (unknown and read-only fields, references by
id or external ID, required fields, inactive owners), then :mod:`.rules` fills computed fields.
"""

from __future__ import annotations

from ..ids import InvalidId, new_id, normalize
from . import duplicates, person_accounts, rules
from .errors import ApiError, bad_request, not_found
from .record_types import RecordTypeSetup
from .schema import NUMBER_TYPES, FieldDef, SObjectDef
from .store import DEFAULT_VERSION
from .values import check_value, coerce, format_datetime, now_utc


class RecordLifecycle(RecordTypeSetup):
    """The API's record operations of :class:`~.org.Org`; they raise ``ApiError`` exactly where
    Salesforce answers with an error array."""

    run_as_user_id: str
    duplicate_rules: list[duplicates.DuplicateRule]

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
            f = self.api_field(obj, key)
            if f is None:
                rel = self.api_relationship(obj, key)
                if rel is not None and isinstance(raw, dict):
                    f, raw = rel, self._resolve_external_reference(rel, raw)
                else:
                    raise bad_request(
                        "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}"
                    )
            if not self.security.settable(obj, f, creating=creating):
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
        ext = self.api_field(target, keys[0])
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
        found = self.lookup(canonical, deleted=True)
        if found is None:
            raise bad_request("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        if found[1].get("IsDeleted"):  # in the recycle bin, or the loser of a merge
            raise bad_request("ENTITY_IS_DELETED", "entity is deleted", [f.name])
        if found[0] == "Lead" and found[1].get("IsConverted"):
            raise bad_request(
                "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [f.name]
            )
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
        for name, value in changes.items():
            f = obj.fields[name]
            if f.unique and value not in (None, ""):
                clash = [
                    r for r in self.match_external(obj, f, value) if r["Id"] != merged.get("Id")
                ]
                if clash:
                    raise bad_request(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: "
                        f"{clash[0]['Id']}",
                        [],
                    )
        owner = merged.get("OwnerId")
        if "OwnerId" in changes and owner is not None:
            user = self.lookup(owner)
            if user is not None and user[0] == "User" and not user[1]["IsActive"]:
                raise bad_request(
                    "INACTIVE_OWNER_OR_USER",
                    f"operation performed with inactive user [{owner}] as owner of "
                    f"{obj.name.lower()}",
                )

    def _no_duplicate(self, obj: SObjectDef, record: dict, allow_save: bool) -> None:
        """The org's duplicate rules (``duplicate_rules``) against the object's live records."""
        if not self.duplicate_rules:
            return
        live = [r for r in self._records[obj.name].values() if not r.get("IsDeleted")]
        duplicates.check(self.duplicate_rules, obj.name, record, live, allow_save=allow_save)

    def create(
        self,
        sobject: str,
        body: object,
        *,
        indexed_now: bool = False,
        allow_save: bool = False,
        seeding: bool = False,
    ) -> dict:
        """Validate and insert; returns ``{"id","success":true,"errors":[]}``. ``seeding`` (the
        tests' pre-existing data) skips the admin's triggers, validation and duplicate rules."""
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
            person_accounts.check(obj, record, changes, None)
            self.check_record_type(obj, record, changes, creating=True)
            self._validate(obj, changes, record, creating=True)
            self.check_record_type_values(obj, record, changes)
            rules.apply(self, obj, record, changes, creating=True)
            if not seeding:
                self.check_admin_rules(obj, record, creating=True)
                self._no_duplicate(obj, record, allow_save)
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
            person_accounts.mirror(self, obj, record, indexed_now=indexed_now)
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
            chosen = self.security.fields(obj)
            if fields is not None:
                chosen = []
                for name in fields:
                    f = self.api_field(obj, name)
                    if f is None:
                        raise bad_request(
                            "INVALID_FIELD", f"No such column '{name}' on entity '{obj.name}'"
                        )
                    chosen.append(f)
            return self.render(obj, rec, chosen, version)

    def update(
        self, sobject: str, record_id: str, body: object, *, allow_save: bool = False
    ) -> None:
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
            person_accounts.check(obj, merged, changes, current)
            self.check_record_type(obj, merged, changes, creating=False)
            self._validate(obj, changes, merged, creating=False)
            self.check_record_type_values(obj, merged, changes)
            rules.apply(self, obj, merged, changes, creating=False, before=current)
            self.check_admin_rules(obj, merged, creating=False)
            self._no_duplicate(obj, merged, allow_save)
            now = format_datetime(now_utc())
            merged.update(
                {
                    "LastModifiedDate": now,
                    "SystemModstamp": now,
                    "LastModifiedById": self.run_as_user_id,
                }
            )
            self._store(obj.name, merged)
            person_accounts.mirror(self, obj, merged)

    def delete(self, sobject: str, record_id: str) -> None:
        with self.lock:
            obj = self.sobject(sobject)
            if not obj.deletable:
                raise bad_request(
                    "INVALID_TYPE_FOR_OPERATION", f"entity type cannot be deleted: {obj.name}"
                )
            current = self._existing(obj, record_id, missing_code="INVALID_CROSS_REFERENCE_KEY")
            person_accounts.check_delete(obj, current)
            now = format_datetime(now_utc())
            gone = {**current, "IsDeleted": True, "LastModifiedDate": now, "SystemModstamp": now}
            self._store(obj.name, gone)
            person_accounts.mirror(self, obj, gone)

    def external_matches(
        self, sobject: str, field_name: str, value: str
    ) -> tuple[SObjectDef, FieldDef, object, list[dict]]:
        """(object, field, typed value, live matches) for an external-ID path; else 404."""
        obj = self.sobject(sobject)
        f = self.api_field(obj, field_name)
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
