"""The default field mapping for E12 → A09: an Aircall call as a Salesforce Task."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from integrations.phones import display, to_e164
from integrations.sync.matching import Match

SUBJECT_MAX = 255
DISPOSITION_MAX = 255
DESCRIPTION_MAX = 32000


def _caller_label(call: dict[str, Any], who: Match | None, region: str) -> str:
    if who is not None and who.name:
        return who.name
    contact = call.get("contact") or {}
    name = " ".join(filter(None, [contact.get("first_name"), contact.get("last_name")]))
    if name:
        return name
    e164 = to_e164(call.get("raw_digits"), region)
    return display(e164) if e164 else (call.get("raw_digits") or "unknown number")


def subject(call: dict[str, Any], who: Match | None, region: str) -> str:
    label = _caller_label(call, who, region)
    if call["direction"] == "outbound":
        text = f"Outbound call to {label}"
        if not call.get("answered_at"):
            text = f"Outbound unanswered call to {label}"
    elif call.get("voicemail"):
        text = f"Voicemail from {label}"
    elif not call.get("answered_at"):
        text = f"Missed call from {label}"
    else:
        text = f"Inbound call from {label}"
    return text[:SUBJECT_MAX]


def activity_date(call: dict[str, Any], zone: str) -> str | None:
    started = call.get("started_at")
    if not isinstance(started, int):
        return None
    return datetime.fromtimestamp(started, UTC).astimezone(ZoneInfo(zone)).date().isoformat()


def call_type(call: dict[str, Any]) -> str:
    """answered | missed | voicemail | outbound_unanswered: each has its own logging setting."""
    if call.get("answered_at"):
        return "answered"
    if call["direction"] == "outbound":
        return "outbound_unanswered"
    return "voicemail" if call.get("voicemail") else "missed"


def description(call: dict[str, Any], ai_summary: str | None = None) -> str:
    """What an agent reading the Task wants: who, tags, notes and where to listen."""
    user = call.get("user") or {}
    number = call.get("number") or {}
    lines = [f"Aircall call {call['id']} ({call['direction']}, {call.get('duration') or 0} s)"]
    if user.get("name"):
        lines.append(f"Agent: {user['name']}")
    if number.get("name") or number.get("digits"):
        lines.append(f"Line: {number.get('name') or ''} {number.get('digits') or ''}".rstrip())
    if call.get("missed_call_reason"):
        lines.append(f"Missed: {call['missed_call_reason']}")
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
    if call.get("direct_link"):
        lines.append(f"Aircall: {call['direct_link']}")
    return "\n".join(lines)[:DESCRIPTION_MAX]


def task_fields(
    call: dict[str, Any],
    who: Match | None,
    owner_id: str | None,
    *,
    region: str,
    zone: str,
    status: str = "Completed",
    ai_summary: str | None = None,
) -> dict[str, Any]:
    """The Task for a call; ``CallObject`` (the Aircall id) is how we find it again."""
    tags = [tag.get("name") for tag in call.get("tags") or [] if tag.get("name")]
    fields: dict[str, Any] = {
        "Subject": subject(call, who, region),
        "TaskSubtype": "Call",
        "Type": "Call",
        "Status": status,
        "CallType": "Outbound" if call["direction"] == "outbound" else "Inbound",
        "CallDurationInSeconds": call.get("duration") or 0,
        "CallObject": str(call["id"]),
        "ActivityDate": activity_date(call, zone),
        "Description": description(call, ai_summary),
    }
    if tags:
        fields["CallDisposition"] = ", ".join(tags)[:DISPOSITION_MAX]
    if who is not None and who.sobject in ("Contact", "Lead"):
        fields["WhoId"] = who.id
    elif who is not None:
        fields["WhatId"] = who.id  # an Account (a switchboard number): related to, not "name"
    if owner_id:
        fields["OwnerId"] = owner_id
    return fields
