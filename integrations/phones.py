"""Phone numbers in one form, E.164, whatever format Aircall or Salesforce hands us."""

from __future__ import annotations

import functools

import phonenumbers


def to_e164(raw: object, region: str = "US") -> str | None:
    """``+14155550100`` for anything that reads as a possible number, else None.

    National formats are read in ``region`` (the ``DEFAULT_REGION`` setting). Aircall's
    ``anonymous`` and junk give None: such a caller matches nobody.
    """
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 64:
        return None
    return _e164(raw, region)


@functools.lru_cache(maxsize=4096)  # every event of a call carries its number: parse it once
def _e164(raw: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display(e164: str) -> str:
    """International display format (``+1 415-555-0100``) for subjects and cards."""
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        return e164
