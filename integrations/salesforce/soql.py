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


# Salesforce drops a search term's operators above 4,000 characters (an OR would no longer be
# one) and returns nothing above 10,000 (SOSL reference, FIND): a combined term stays within.
MAX_TERM = 4000
MAX_RESULTS = 2000  # the rows one search returns at most, over all its objects (SOSL limits)
_OR = " OR "
_MIN_TERM = 2  # a shorter term is refused; such a number is searched alone, with its own answer


def phone_digits(e164: str) -> str:
    """What a phone search looks for: the number's digits (ASCII only: nothing else reaches
    the term)."""
    return re.sub(r"[^0-9]", "", e164)


def _returning(returning: dict[str, list[str]], limit: int | None) -> str:
    tail = f" LIMIT {int(limit)}" if limit is not None else ""
    return ", ".join(
        f"{api_name(sobject)}({', '.join(dict.fromkeys(map(field_path, fields)))}{tail})"
        for sobject, fields in returning.items()
    )


def sosl_phone_search(e164: str, returning: dict[str, list[str]] | None = None) -> str:
    """A phone search for the number's digits; callers confirm matches client-side."""
    term = sosl_escape(phone_digits(e164))
    objects = _returning(returning or DEFAULT_RETURNING, None)
    return f"FIND {{{term}}} IN PHONE FIELDS RETURNING {objects}"


def sosl_phones_search(numbers: list[str], returning: dict[str, list[str]], *, limit: int) -> str:
    """One search for several numbers (``FIND {n1 OR n2 ...}``), each object's rows capped at
    ``limit`` so that a caller can tell when some may have been cut. The numbers are grouped
    by ``phone_groups`` first: a term too long or too short for an OR is a ValueError."""
    terms = list(dict.fromkeys(sosl_escape(phone_digits(n)) for n in numbers))
    term = _OR.join(terms)
    if any(len(t) < _MIN_TERM for t in terms) or len(term) > MAX_TERM:
        raise ValueError("these numbers cannot share one search term")
    return f"FIND {{{term}}} IN PHONE FIELDS RETURNING {_returning(returning, limit)}"


def phone_groups(numbers: list[str], size: int) -> list[list[str]]:
    """The numbers in the groups that can each share one search: at most ``size`` numbers and
    ``MAX_TERM`` characters a group; a number too short for an OR (or too long to share a
    term) in a group of its own."""
    groups: list[list[str]] = []
    group: list[str] = []
    length = 0  # of the group's term: its numbers' digits joined by " OR "
    for number in dict.fromkeys(numbers):
        digits = len(phone_digits(number))
        if not _MIN_TERM <= digits <= MAX_TERM:
            groups.append([number])
            continue
        longer = length + len(_OR) + digits if group else digits
        if group and (len(group) >= size or longer > MAX_TERM):
            groups.append(group)
            group, longer = [], digits
        group.append(number)
        length = longer
    return [*groups, group] if group else groups
