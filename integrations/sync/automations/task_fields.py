"""The call's own Task (E12 → A09): the fields that make it the call's, and its default texts.

Everything on the Task but ``FIXED_TASK_FIELDS`` comes from the manager's Task mapping
(``automations.fieldmap``); the shipped one reads ``subject`` and ``description`` below
as the sources ``call_subject`` and ``call_description``.
"""

from __future__ import annotations

from typing import Any

from integrations.phones import display, to_e164
from integrations.sync.callers.matching import Match

# Salesforce's lengths of the standard Task text fields: a long tag list is cut, not refused.
TASK_LENGTHS = {"Subject": 255, "CallDisposition": 255, "Description": 32000}
# Set by Callbridge whatever the mapping says: they make a Task the call's own, and find it again.
FIXED_TASK_FIELDS = ("CallObject", "TaskSubtype", "Status", "WhoId", "WhatId")
# What makes a Task a logged call in Salesforce's activity history: only the call's own Task
# carries them, never a follow-up Task an automation makes (it would read as a second call).
CALL_LOG_FIELDS = ("CallType", "CallDurationInSeconds", "CallDisposition", "CallObject")
# What a follow-up Task takes from the Task mapping; the rest of it describes the call.
FOLLOW_UP_FROM_MAPPING = ("OwnerId", "ActivityDate")

# Aircall's ``missed_call_reason`` codes, in the words a person reading the Task expects.
MISSED_REASONS = {
    "out_of_opening_hours": "outside opening hours",
    "short_abandoned": "the caller hung up within seconds",
    "abandoned_in_ivr": "the caller hung up in the phone menu",
    "abandoned_in_classic": "the caller hung up while waiting",
    "no_available_agent": "no agent was available",
    "agents_did_not_answer": "no agent answered",
}


def _caller_label(call: dict[str, Any], caller: str | None, region: str) -> str:
    if caller:
        return caller
    contact = call.get("contact") or {}
    name = " ".join(filter(None, [contact.get("first_name"), contact.get("last_name")]))
    if name:
        return name
    e164 = to_e164(call.get("raw_digits"), region)
    return display(e164) if e164 else (call.get("raw_digits") or "unknown number")


def subject(call: dict[str, Any], caller: str | None, region: str) -> str:
    """The Subject, as in "Inbound call from Jane Doe": Jane Doe is ``caller`` (the matched
    record's name), else the Aircall contact's name, else the number."""
    label = _caller_label(call, caller, region)
    if call.get("direction") == "outbound":
        text = f"Outbound call to {label}"
        if not call.get("answered_at"):
            text = f"Outbound unanswered call to {label}"
    elif call.get("voicemail"):
        text = f"Voicemail from {label}"
    elif not call.get("answered_at"):
        text = f"Missed call from {label}"
    else:
        text = f"Inbound call from {label}"
    return text[: TASK_LENGTHS["Subject"]]


def call_type(call: dict[str, Any]) -> str:
    """answered | missed | voicemail | outbound_unanswered: each has its own logging setting."""
    if call.get("answered_at"):
        return "answered"
    if call["direction"] == "outbound":
        return "outbound_unanswered"
    return "voicemail" if call.get("voicemail") else "missed"


def description(
    call: dict[str, Any], ai_summary: str | None = None, link: str | None = None
) -> str:
    """What an agent reading the Task wants: who, tags, notes, where to listen and ``link``, the
    call's page in Aircall (not the API's ``direct_link``: it needs API credentials)."""
    user = call.get("user") or {}
    number = call.get("number") or {}
    lines = [f"Aircall call {call['id']} ({call['direction']}, {call.get('duration') or 0} s)"]
    if user.get("name"):
        lines.append(f"Agent: {user['name']}")
    if number.get("name") or number.get("digits"):
        lines.append(f"Line: {number.get('name') or ''} {number.get('digits') or ''}".rstrip())
    if call.get("missed_call_reason"):
        reason = call["missed_call_reason"]
        lines.append(f"Missed: {MISSED_REASONS.get(reason, str(reason).replace('_', ' '))}")
    tags = [tag.get("name") for tag in call.get("tags") or [] if tag.get("name")]
    if tags:
        lines.append("Tags: " + ", ".join(tags))
    comments = [c.get("content") for c in call.get("comments") or [] if c.get("content")]
    if comments:
        lines.append("Comments:")
        lines.extend(f"- {content}" for content in comments)
    # The asset page needs an Aircall login but does not expire, unlike the signed mp3 links.
    if call.get("voicemail"):
        lines.append(f"Voicemail: {call.get('asset') or call['voicemail']}")
    elif call.get("recording"):
        lines.append(f"Recording: {call.get('asset') or call['recording']}")
    if ai_summary:
        lines.append(f"AI summary: {ai_summary}")
    if link:
        lines.append(f"Aircall: {link}")
    return "\n".join(lines)[: TASK_LENGTHS["Description"]]


def task_fields(
    mapped: dict[str, Any], call_id: int, who: Match | None, *, status: str
) -> dict[str, Any]:
    """The call's Task: the Task mapping's fields (``mapped``), then the fixed ones.

    ``CallObject`` (the Aircall id) is how we find the Task again.
    """
    fixed = {name.lower() for name in FIXED_TASK_FIELDS}
    fields: dict[str, Any] = {}
    for name, value in mapped.items():
        if name.lower() in fixed:
            continue  # a mapping saved before they were refused
        limit = TASK_LENGTHS.get(name)
        fields[name] = value[:limit] if limit and isinstance(value, str) else value
    fields.update(CallObject=str(call_id), TaskSubtype="Call", Status=status)
    if who is not None and who.person_contact:
        # A person account: the person is its hidden Contact, related to the account itself.
        fields.update(WhoId=who.person_contact, WhatId=who.id)
    elif who is not None and who.sobject in ("Contact", "Lead"):
        fields["WhoId"] = who.id
    elif who is not None:
        fields["WhatId"] = who.id  # an Account (a switchboard number): related to, not "name"
    return fields
