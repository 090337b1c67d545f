"""Aircall actions of the catalogue, on top of the client: A01 Create Contact, A04 Add Comment.

They know Aircall's rules (20 numbers per contact, 5 comments per call, no upsert, no edit) and
nothing of our database: callers keep the mappings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from integrations.aircall.client import AircallClient
from integrations.errors import RemoteRejected
from integrations.phones import to_e164

MAX_DETAILS = 20  # phone numbers (and emails) per Aircall contact
MAX_COMMENTS = 5  # per call; a 6th is refused, and comments cannot be edited or deleted
MERGE_SEPARATOR = "\n\n"
SALESFORCE_ID = "salesforce_id:"  # in ``information``: the only free-text field Aircall has

# Standard phone fields, with the label Aircall shows; custom ones (``…Phone__c``) are "Other".
PHONE_LABELS = {
    "Phone": "Work",
    "MobilePhone": "Mobile",
    "HomePhone": "Home",
    "OtherPhone": "Other",
    "AssistantPhone": "Assistant",
}
_FULL = re.compile(r"maximum of \d+ notes", re.IGNORECASE)


class NoPhone(ValueError):
    """The record has no phone number Aircall can store: A01 is skipped, not retried."""


def phone_fields(record: dict[str, Any]) -> list[str]:
    """The record's phone fields: the standard ones first, then custom ones, in record order."""
    custom = [name for name in record if name.endswith(("Phone", "Phone__c"))]
    return [name for name in PHONE_LABELS if name in record] + [
        name for name in custom if name not in PHONE_LABELS
    ]


def contact_body(record: dict[str, Any], record_id: str, region: str) -> dict[str, Any]:
    """``POST /v1/contacts`` for a Salesforce record (Lead, Contact, Account or custom).

    Numbers in E.164 (how Aircall matches callers), each once, at most 20; the record's id in
    ``information``. ``NoPhone`` when no field holds a number.
    """
    numbers: dict[str, str] = {}
    for name in phone_fields(record):
        e164 = to_e164(record.get(name), region)
        if e164 and e164 not in numbers:
            numbers[e164] = PHONE_LABELS.get(name, "Other")
    if not numbers:
        raise NoPhone("no phone number on the record")
    account = record.get("Account")
    company = record.get("Company") or (account.get("Name") if isinstance(account, dict) else None)
    body: dict[str, Any] = {
        "first_name": record.get("FirstName") or None,
        "last_name": record.get("LastName") or record.get("Name") or None,
        "company_name": company or None,
        "information": f"{SALESFORCE_ID}{record_id}",
        "phone_numbers": [
            {"label": label, "value": value} for value, label in list(numbers.items())[:MAX_DETAILS]
        ],
    }
    email = record.get("Email")
    if isinstance(email, str) and "@" in email:
        body["emails"] = [{"label": "Office", "value": email.strip()}]
    return body


async def find_contact(
    aircall: AircallClient, numbers: list[str], record_id: str
) -> dict[str, Any] | None:
    """An existing contact holding one of ``numbers``, searched one number at a time.

    The first number with a hit decides; among its contacts, one made for ``record_id`` (a
    retry after a lost answer) comes first, then the oldest.
    """
    for number in numbers:
        found = await aircall.search_contacts(number)
        if found:
            mine = f"{SALESFORCE_ID}{record_id}"
            return min(found, key=lambda c: ((c.get("information") or "") != mine, c["id"]))
    return None


async def create_contact(
    aircall: AircallClient, body: dict[str, Any], record_id: str
) -> tuple[dict[str, Any], bool]:
    """A01: the contact for ``body``, made only when no contact has any of its numbers.

    Aircall has no upsert, so the search comes first. Returns (contact, created).
    """
    numbers = [entry["value"] for entry in body["phone_numbers"]]
    existing = await find_contact(aircall, numbers, record_id)
    if existing is not None:
        return existing, False
    return await aircall.create_contact(body), True


@dataclass
class CommentOutcome:
    """What A04 did: texts posted, and those that found no room on the call."""

    posted: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)


def is_on(comments: list[str], text: str) -> bool:
    """True when ``text`` is one of ``comments``, alone or as a part of one we merged."""
    return any(
        comment == text
        or comment.startswith(text + MERGE_SEPARATOR)
        or comment.endswith(MERGE_SEPARATOR + text)
        or f"{MERGE_SEPARATOR}{text}{MERGE_SEPARATOR}" in comment
        for comment in comments
    )


def plan_comments(existing: list[str], texts: list[str], limit: int = MAX_COMMENTS) -> list[str]:
    """The comments to post so that ``texts`` fit in the slots the call has left.

    Texts already on the call (alone, or as a part of a comment we merged) are not posted
    again, so a retry after a lost answer adds nothing. If the rest outnumber the free slots,
    each text but the overflow gets a slot and the last free slot takes every remaining text,
    joined by a blank line. With no free slot, nothing is planned.
    """
    todo = [t for t in dict.fromkeys(texts) if t.strip() and not is_on(existing, t)]
    free = max(limit - len(existing), 0)
    if not todo or not free:
        return []
    if len(todo) <= free:
        return todo
    return [*todo[: free - 1], MERGE_SEPARATOR.join(todo[free - 1 :])]


async def add_comments(aircall: AircallClient, call_id: int, texts: list[str]) -> CommentOutcome:
    """A04: put ``texts`` on the call as comments, merging rather than failing at 5.

    Aircall keeps at most 5 comments per call and cannot edit or delete one, so a merge can
    only happen before posting: when our texts outnumber the call's free slots, the last free
    slot gets them all in one comment (see :func:`plan_comments`). A call that already holds 5
    comments takes nothing; the texts come back as ``unplaced`` (not an error) for the caller
    to keep elsewhere, e.g. on the call's Salesforce Task. If someone else takes a slot between
    our read and our post (Aircall answers 400 "Maximum of 5 notes"), we read again and re-plan.
    """
    outcome = CommentOutcome()
    for _ in range(MAX_COMMENTS + 1):  # each lost race means one more comment on the call
        call = await aircall.get_call(call_id)
        existing = [c.get("content") or "" for c in call.get("comments") or []]
        plan = plan_comments(existing, texts)
        try:
            for comment in plan:
                await aircall.add_comment(call_id, comment)
                outcome.posted.append(comment)
        except RemoteRejected as exc:
            if exc.status == 400 and _FULL.search(str(exc.body)):
                continue
            raise
        break
    on_call = set(outcome.posted) | set(existing)
    placed = {part for comment in on_call for part in comment.split(MERGE_SEPARATOR)} | on_call
    outcome.unplaced = [
        text for text in dict.fromkeys(texts) if text.strip() and text not in placed
    ]
    return outcome
