"""Person Accounts: an org where an Account can be a person (B2C), as Salesforce has them once
they are enabled (``Org.enable_person_accounts``; Salesforce cannot turn them off again).

* Account's describe gains ``IsPersonAccount`` and ``PersonContactId`` (read-only), the person's
  name (``FirstName``, ``LastName``, ``Salutation``) and the ``Person*`` fields; Contact's gains
  ``IsPersonAccount``.
* An Account created with ``LastName`` is a person account (the last name stands for the person
  account record type, which the emulator does not model). Its ``Name`` is computed from the
  first and last names and may not be written (``INVALID_FIELD_FOR_INSERT_UPDATE`` naming
  ``Name``, as Salesforce answers); a business account may not set a person field ("bad field
  names on insert/update call").
* Contact's custom fields show on Account too, ending in ``__pc`` (``Foo__c`` → ``Foo__pc``).
* Each person account has a hidden Contact (``PersonContactId``, ``IsPersonAccount`` true, the
  Account as its ``AccountId``) holding the person's fields (``PERSON_CONTACT``); writes go
  through the Account, and a write or delete of that Contact is refused
  (``INVALID_PERSON_ACCOUNT_OPERATION``). A Task may name it as its ``WhoId``.
* Search: the person account is found as an Account (its ``Person*Phone`` fields are phone fields,
  so ``IN PHONE FIELDS`` reads them); SOSL does not return the hidden Contact, SOQL does.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..ids import new_id
from .errors import bad_request
from .picklists import LEAD_SOURCES
from .schema import FieldDef, SObjectDef

if TYPE_CHECKING:
    from .store import Store

# Account field -> the hidden Contact's field that mirrors it.
PERSON_CONTACT = {
    "Salutation": "Salutation",
    "FirstName": "FirstName",
    "LastName": "LastName",
    "PersonEmail": "Email",
    "PersonMobilePhone": "MobilePhone",
    "PersonHomePhone": "HomePhone",
    "PersonOtherPhone": "OtherPhone",
    "PersonAssistantPhone": "AssistantPhone",
    "PersonTitle": "Title",
    "PersonDepartment": "Department",
    "PersonLeadSource": "LeadSource",
    "PersonDoNotCall": "DoNotCall",
    "PersonHasOptedOutOfEmail": "HasOptedOutOfEmail",
    "PersonMailingCity": "MailingCity",
    "PersonMailingCountry": "MailingCountry",
    "Phone": "Phone",
    "Fax": "Fax",
    "OwnerId": "OwnerId",
}
SHARED = {"Phone", "Fax", "OwnerId"}  # fields business accounts have as well
NOT_PERSON_ACCOUNT_OPERATION = "cannot reference person contact"


def _field(name: str, type_: str, label: str, length: int = 0, **kw: object) -> FieldDef:
    return FieldDef(name=name, type=type_, label=label, length=length, **kw)  # type: ignore[arg-type]


def _flag(name: str, label: str, *, writable: bool = True) -> FieldDef:
    return _field(
        name,
        "boolean",
        label,
        nillable=False,
        defaulted_on_create=True,
        default=False,
        createable=writable,
        updateable=writable,
    )


def account_fields() -> list[FieldDef]:
    """What enabling Person Accounts adds to Account (a real subset of Salesforce's)."""
    return [
        _flag("IsPersonAccount", "Is Person Account", writable=False),
        _field(
            "PersonContactId",
            "reference",
            "Person Contact ID",
            createable=False,
            updateable=False,
            reference_to=("Contact",),
            relationship_name="PersonContact",
        ),
        _field("FirstName", "string", "First Name", 40),
        _field("LastName", "string", "Last Name", 80),
        _field(
            "Salutation",
            "picklist",
            "Salutation",
            255,
            picklist=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof."),
        ),
        _field("PersonEmail", "email", "Email", 80),
        _field("PersonMobilePhone", "phone", "Mobile", 40),
        _field("PersonHomePhone", "phone", "Home Phone", 40),
        _field("PersonOtherPhone", "phone", "Other Phone", 40),
        _field("PersonAssistantPhone", "phone", "Asst. Phone", 40),
        _field("PersonTitle", "string", "Title", 80),
        _field("PersonDepartment", "string", "Department", 80),
        _field("PersonLeadSource", "picklist", "Lead Source", 255, picklist=LEAD_SOURCES),
        _flag("PersonDoNotCall", "Do Not Call"),
        _flag("PersonHasOptedOutOfEmail", "Email Opt Out"),
        _field("PersonMailingCity", "string", "Mailing City", 40),
        _field("PersonMailingCountry", "string", "Mailing Country", 80),
    ]


def person_field(contact_field: FieldDef) -> FieldDef:
    """A custom Contact field as person accounts show it on Account (``Foo__c`` → ``Foo__pc``)."""
    return replace(contact_field, name=contact_field.name[: -len("__c")] + "__pc")


def custom_fields(contact: SObjectDef) -> list[FieldDef]:
    return [f for f in contact.fields.values() if f.custom and f.name.endswith("__c")]


def contact_map(schema: dict[str, SObjectDef]) -> dict[str, str]:
    """Account field -> the hidden Contact's field: the standard ones and every custom one."""
    custom = {person_field(f).name: f.name for f in custom_fields(schema["Contact"])}
    return {**PERSON_CONTACT, **custom}


def add_field(
    schema: dict[str, SObjectDef], records: dict[str, dict[str, dict]], obj: str, f: FieldDef
) -> None:
    """A custom field added to Contact once Person Accounts are on also shows on Account."""
    if obj == "Contact" and f.custom and enabled(schema["Account"]):
        _add(schema, records, {"Account": [person_field(f)]})


def _add(
    schema: dict[str, SObjectDef],
    records: dict[str, dict[str, dict]],
    added: dict[str, list[FieldDef]],
) -> None:
    for sobject, fields in added.items():
        obj = schema[sobject]
        for f in fields:
            obj.fields[f.name] = f
            for rec in records[sobject].values():
                rec[f.name] = f.default if f.type == "boolean" else None
        obj.reindex()


def enable(schema: dict[str, SObjectDef], records: dict[str, dict[str, dict]]) -> None:
    """Add the fields to Account and Contact; existing accounts stay business accounts."""
    if schema["Account"].field("IsPersonAccount"):
        return  # enabled already
    custom = [person_field(f) for f in custom_fields(schema["Contact"])]
    added = {
        "Account": [*account_fields(), *custom],
        "Contact": [_flag("IsPersonAccount", "Is Person Account", writable=False)],
    }
    _add(schema, records, added)
    account = schema["Account"]
    account.name_fields = (*account.name_fields, "FirstName", "LastName")


def enabled(obj: SObjectDef) -> bool:
    return obj.name in ("Account", "Contact") and "IsPersonAccount" in obj.fields


def _name(record: dict) -> str:
    return " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)


def check(obj: SObjectDef, record: dict, changes: dict, before: dict | None) -> None:
    """Before a create (``before`` None) or update is validated: refuse what Salesforce refuses
    and compute a person account's ``Name``."""
    if not enabled(obj):
        return
    if obj.name == "Contact":
        if before is not None and before.get("IsPersonAccount"):
            raise bad_request("INVALID_PERSON_ACCOUNT_OPERATION", NOT_PERSON_ACCOUNT_OPERATION)
        return
    person = bool(before.get("IsPersonAccount")) if before is not None else "LastName" in changes
    if person:
        if "Name" in changes:
            raise bad_request(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                "Unable to create/update fields: Name. Please check the security settings of "
                "this field and verify that it is read/write for your profile or permission set.",
                ["Name"],
            )
        if not record.get("LastName"):
            raise bad_request(
                "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"]
            )
        record["IsPersonAccount"] = True
        record["Name"] = _name(record)
        return
    wrong = [
        name
        for name in changes
        if (name in PERSON_CONTACT or name.endswith("__pc")) and name not in SHARED
    ]
    if wrong:
        raise bad_request(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Account: bad field names on insert/update call: {', '.join(wrong)}",
            wrong,
        )


def check_delete(obj: SObjectDef, current: dict) -> None:
    """The hidden Contact goes with its account, never on its own."""
    if enabled(obj) and obj.name == "Contact" and current.get("IsPersonAccount"):
        raise bad_request("INVALID_PERSON_ACCOUNT_OPERATION", NOT_PERSON_ACCOUNT_OPERATION)


def mirror(org: Store, obj: SObjectDef, account: dict, *, indexed_now: bool = False) -> None:
    """After a person account is stored: its hidden Contact made, brought up to date or (the
    account deleted) deleted with it."""
    if not (enabled(obj) and obj.name == "Account" and account.get("IsPersonAccount")):
        return
    contact_id = account.get("PersonContactId")
    found = org.lookup(contact_id, deleted=True) if contact_id else None
    contact = dict(found[1]) if found else {name: None for name in org.schema["Contact"].fields}
    for source, target in contact_map(org.schema).items():
        contact[target] = account.get(source)
    contact.update(
        {
            "Name": account["Name"],
            "AccountId": account["Id"],
            "IsPersonAccount": True,
            "IsDeleted": bool(account.get("IsDeleted")),
            "LastModifiedDate": account["LastModifiedDate"],
            "SystemModstamp": account["SystemModstamp"],
            "LastModifiedById": account["LastModifiedById"],
        }
    )
    if found is None:
        contact.update(
            {
                "Id": new_id("003"),
                "CreatedDate": account["CreatedDate"],
                "CreatedById": account["CreatedById"],
            }
        )
    org._store("Contact", contact, indexed_now=indexed_now)
    if contact_id != contact["Id"]:
        linked = {**account, "PersonContactId": contact["Id"]}
        org._store("Account", linked, indexed_now=indexed_now)


def hidden_from_search(obj: SObjectDef, record: dict) -> bool:
    """SOSL finds the person as its Account, not as the hidden Contact."""
    return obj.name == "Contact" and bool(record.get("IsPersonAccount"))
