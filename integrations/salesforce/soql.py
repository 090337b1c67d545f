"""SOSL and SOQL text built safely: escaped values only, and SELECT only."""

from __future__ import annotations

import re

# Every character SOSL reserves inside FIND {...} (Salesforce's SOSL reference).
_SOSL_RESERVED = re.compile(r"""([?&|!{}\[\]()^~*:\\"'+\-])""")

PHONE_RETURNING = (
    "Contact(Id, Name, FirstName, LastName, Email, Phone, MobilePhone, AccountId, OwnerId), "
    "Lead(Id, Name, FirstName, LastName, Email, Company, Phone, MobilePhone, OwnerId, "
    "Status, IsConverted)"
)


def sosl_escape(term: str) -> str:
    """Backslash every SOSL reserved character so the term is searched literally."""
    return _SOSL_RESERVED.sub(r"\\\1", term)


def sosl_phone_search(e164: str) -> str:
    """A phone search for the number's digits; callers confirm matches client-side."""
    digits = re.sub(r"\D", "", e164)
    return f"FIND {{{sosl_escape(digits)}}} IN PHONE FIELDS RETURNING {PHONE_RETURNING}"
