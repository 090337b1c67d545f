"""SOSL and SOQL text built safely: escaped values only, and SELECT only."""

from __future__ import annotations

import re

# Every character SOSL reserves inside FIND {...} (Salesforce's SOSL reference).
_SOSL_RESERVED = re.compile(r"""([?&|!{}\[\]()^~*:\\"'+\-])""")

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")  # sObject and field API names

DEFAULT_RETURNING = {
    "Contact": ["Id", "Name", "AccountId", "OwnerId", "Phone", "MobilePhone"],
    "Lead": ["Id", "Name", "Company", "Status", "OwnerId", "IsConverted", "Phone", "MobilePhone"],
}


def sosl_escape(term: str) -> str:
    """Backslash every SOSL reserved character so the term is searched literally."""
    return _SOSL_RESERVED.sub(r"\\\1", term)


def api_name(name: str) -> str:
    """An sObject or field name, checked: names come from settings, never from call data."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a Salesforce API name: {name!r}")
    return name


def field_path(name: str) -> str:
    """A field or a parent path (``Owner.Name``), each part checked as an API name."""
    return ".".join(api_name(part) for part in name.split("."))


def sosl_phone_search(e164: str, returning: dict[str, list[str]] | None = None) -> str:
    """A phone search for the number's digits; callers confirm matches client-side."""
    digits = re.sub(r"\D", "", e164)
    objects = ", ".join(
        f"{api_name(sobject)}({', '.join(dict.fromkeys(map(field_path, fields)))})"
        for sobject, fields in (returning or DEFAULT_RETURNING).items()
    )
    return f"FIND {{{sosl_escape(digits)}}} IN PHONE FIELDS RETURNING {objects}"
