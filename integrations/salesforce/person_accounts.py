"""Person Accounts: whether the org has them, and the fields a person account is found by.

An org with Person Accounts shows ``IsPersonAccount`` in Account's describe. A person account
is an Account whose person lives in a hidden Contact (``PersonContactId``): its calls are found
by the person's phone fields and logged with that Contact as the Task's ``WhoId``.
"""

from __future__ import annotations

from integrations.errors import RemoteRejected
from integrations.salesforce import access
from integrations.salesforce.client import SalesforceClient

# Searched beside Account.Phone, which a person account shares with its Contact.
PHONE_FIELDS = ("PersonMobilePhone", "PersonHomePhone", "PersonOtherPhone")
FIELDS = ("IsPersonAccount", "PersonContactId")


def enabled(sf: SalesforceClient) -> bool:
    """From Account's describe, read once per client and reused (``access.DESCRIBE_TTL``), so a
    call costs no request for it. An Account the integration user may not describe: no."""
    try:
        described = access.describe(sf, "Account")
    except RemoteRejected:
        return False
    return any(f.get("name") == "IsPersonAccount" for f in described.get("fields", []))


# A person's Contact fields that a person account shares under the same name.
SHARED_FIELDS = frozenset({"Phone", "Fax", "OwnerId", "Description"})


def account_field(contact_field: str) -> str:
    """The person account's name for one of its Contact's fields, as Salesforce names them:
    standard fields gain ``Person`` (``DoNotCall`` → ``PersonDoNotCall``), custom ones end in
    ``__pc`` instead of ``__c``."""
    if contact_field.endswith("__c"):
        return contact_field[: -len("__c")] + "__pc"
    if contact_field in SHARED_FIELDS or contact_field in ("FirstName", "LastName", "Salutation"):
        return contact_field
    return f"Person{contact_field}"


def account_fields(contact_fields: dict[str, object]) -> dict[str, object]:
    """A change meant for a person's Contact, as its person account takes it."""
    return {account_field(name): value for name, value in contact_fields.items()}
