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
