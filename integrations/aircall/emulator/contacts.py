"""Shared contacts of a company: create, update, delete, search, and the contact a caller shows.

Contacts are kept in REST's shape; their ``contact.*`` webhooks carry ISO dates instead of REST's
integers. Phone numbers compare as E.164.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .catalogue import API_HOST, MAX_CONTACT_DETAILS, e164, iso
from .errors import BadRequest, NotFound

_CONTACT_SCALARS = ("first_name", "last_name", "company_name", "information")


class ContactBook:
    """Contacts of :class:`~.company.Company` (which provides ids, the clock and webhooks)."""

    _lock: threading.Lock
    _emit: Callable[[str, str, dict], None]
    _next_id: Callable[[str], int]
    _now: Callable[[], int]

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(clock)  # type: ignore[call-arg]
        self.contacts: dict[int, dict] = {}

    def add_contact(
        self,
        first_name: str | None,
        last_name: str | None,
        phones: list[str],
        emails: Iterable[str] = (),
        company_name: str | None = None,
        information: str | None = None,
    ) -> dict:
        """A shared contact, as the Phone app would create it; fires ``contact.created``."""
        return self.create_contact(
            {
                "first_name": first_name,
                "last_name": last_name,
                "company_name": company_name,
                "information": information,
            },
            [{"label": "Work", "value": phone} for phone in phones],
            [{"label": "Office", "value": email} for email in emails],
        )

    def create_contact(
        self, fields: dict[str, Any], phone_numbers: list[dict], emails: list[dict]
    ) -> dict:
        """``POST /v1/contacts``: ``phone_numbers`` entries need ``label`` and ``value``."""
        _check_details(phone_numbers, "phone_numbers", required=True)
        _check_details(emails, "emails", required=False)
        for entry in phone_numbers:
            if e164(entry["value"]) is None:
                raise BadRequest(f"Phone number '{entry['value']}' is invalid.")
        for entry in emails:
            if "@" not in entry["value"]:
                raise BadRequest(f"Email '{entry['value']}' is invalid.")
        with self._lock:
            contact_id = self._next_id("contact")
            now = self._now()
            contact = {
                "id": contact_id,
                "direct_link": f"{API_HOST}/v1/contacts/{contact_id}",
                **{key: fields.get(key) for key in _CONTACT_SCALARS},
                "is_shared": True,
                "created_at": now,
                "updated_at": now,
                "phone_numbers": [self._detail(entry) for entry in phone_numbers],
                "emails": [self._detail(entry) for entry in emails],
            }
            self.contacts[contact_id] = contact
            self._emit("contact.created", "contact", _contact_payload(contact))
            return copy.deepcopy(contact)

    def _detail(self, entry: dict) -> dict:
        return {"id": self._next_id("detail"), "label": entry["label"], "value": entry["value"]}

    def _contact(self, contact_id: int) -> dict:
        try:
            return self.contacts[contact_id]
        except KeyError:
            raise NotFound(f"Contact {contact_id} not found.") from None

    def contact(self, contact_id: int) -> dict:
        with self._lock:
            return copy.deepcopy(self._contact(contact_id))

    def update_contact(self, contact_id: int, fields: dict[str, Any]) -> dict:
        """``POST /v1/contacts/{id}``: scalar fields only; fires ``contact.updated``."""
        unknown = set(fields) - set(_CONTACT_SCALARS)
        if unknown:
            raise BadRequest(
                f"Only {', '.join(_CONTACT_SCALARS)} can be updated here "
                f"(phone numbers and emails have their own endpoints); got {sorted(unknown)}."
            )
        for key, value in fields.items():
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"'{key}' must be a string.")
        with self._lock:
            contact = self._contact(contact_id)
            contact.update(fields)
            contact["updated_at"] = max(self._now(), contact["updated_at"])
            self._emit("contact.updated", "contact", _contact_payload(contact))
            return copy.deepcopy(contact)

    def delete_contact(self, contact_id: int) -> None:
        """Fires ``contact.deleted`` with the last state, details already emptied."""
        with self._lock:
            contact = self.contacts.pop(contact_id, None)
            if contact is None:
                raise NotFound(f"Contact {contact_id} not found.")
            contact.update(phone_numbers=[], emails=[], updated_at=self._now())
            self._emit("contact.deleted", "contact", _contact_payload(contact))

    def list_contacts(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self.contacts.values()))

    def search_contacts(self, phone_number: str | None, email: str | None) -> list[dict]:
        """Contacts matching every key given.

        Phone rule: both sides are reduced to E.164 (spaces, dashes and brackets ignored, a
        missing ``+`` added) and must be equal; no partial match. A query that is not a phone
        number matches nothing. Emails compare without case.
        """
        wanted_phone = e164(phone_number) if phone_number is not None else None
        with self._lock:
            found = []
            for contact in self.contacts.values():
                if phone_number is not None and (
                    wanted_phone is None
                    or all(e164(p["value"]) != wanted_phone for p in contact["phone_numbers"])
                ):
                    continue
                if email is not None and all(
                    e["value"].casefold() != email.strip().casefold() for e in contact["emails"]
                ):
                    continue
                found.append(copy.deepcopy(contact))
            return found

    def _contact_for_phone(self, phone: str | None) -> dict | None:
        """The contact Aircall shows for a caller: the oldest one holding that number."""
        if phone is None:
            return None
        for contact in self.contacts.values():
            if any(e164(p["value"]) == phone for p in contact["phone_numbers"]):
                return contact
        return None


def _contact_payload(contact: dict) -> dict:
    """A contact as ``contact.*`` webhooks carry it: the newest description of those events
    gives ``created_at``/``updated_at`` as ISO strings, unlike REST's integers."""
    data = copy.deepcopy(contact)
    for key in ("created_at", "updated_at"):
        data[key] = iso(data[key]).split(".")[0] + "Z"
    return data


def _check_details(entries: object, name: str, *, required: bool) -> None:
    if not isinstance(entries, list):
        raise BadRequest(f"'{name}' must be a list of {{label, value}} objects.")
    if required and not entries:
        raise BadRequest(f"'{name}' is mandatory and needs at least one entry.")
    if len(entries) > MAX_CONTACT_DETAILS:
        raise BadRequest(f"'{name}' can hold at most {MAX_CONTACT_DETAILS} entries.")
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or set(entry) != {"label", "value"}
            or not all(isinstance(entry[k], str) and entry[k].strip() for k in ("label", "value"))
        ):
            raise BadRequest(f"Each entry of '{name}' needs a 'label' and a 'value', nothing else.")
