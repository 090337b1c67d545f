"""Fixed facts about Aircall the emulator copies: event names, default tags, formats."""

from __future__ import annotations

import datetime as dt

import phonenumbers

API_HOST = "https://api.aircall.io"

CALL_EVENTS = (
    "call.created",
    "call.ringing_on_agent",
    "call.agent_declined",
    "call.answered",
    "call.transferred",
    "call.external_transferred",
    "call.unsuccessful_transfer",
    "call.hungup",
    "call.ended",
    "call.hold",
    "call.unhold",
    "call.ivr_option_selected",
    "call.comm_assets_generated",
    "call.voicemail_left",
    "call.assigned",
    "call.archived",
    "call.tagged",
    "call.untagged",
    "call.commented",
)
_USER_EVENTS = (
    "created",
    "deleted",
    "connected",
    "disconnected",
    "opened",
    "closed",
    "wut_start",
    "wut_end",
)
#: Every event a webhook may subscribe to (the 67 of Aircall's reference); a webhook created
#: without ``events`` gets all of them.
ALL_EVENTS: tuple[str, ...] = (
    *CALL_EVENTS,
    *(f"user.{name}.v2" for name in _USER_EVENTS),
    *(f"user.{name}" for name in _USER_EVENTS),
    "number.created",
    "number.opened",
    "number.closed",
    "number.deleted",
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "message.sent",
    "message.received",
    "message.status_updated",
    "group_message.sent",
    "group_message.received",
    "group_message.status_updated",
    "transcription.created",
    "summary.created",
    "topics.created",
    "sentiment.created",
    "action_item.created",
    "playbook_result.created",
    "playbook_result.updated",
    "realtime_transcription.utterances_received",
    "custom_summary.result_created",
    "custom_summary.result_updated",
    "call_evaluation.created",
    "call_evaluation.updated",
    "ai_voice_agent.started",
    "ai_voice_agent.ended",
    "ai_voice_agent.escalated",
    "ai_voice_agent.summary",
    "analytics.report_created",
    "analytics.report_failed",
    "integration.deleted",
)

#: Tags every new Aircall account starts with (name, colour, description).
DEFAULT_TAGS = (
    ("Callback Request", "#29C8FF", "queue_callback"),
    ("Called Back", "#00B388", None),
    ("Conference", "#7E57C2", None),
    ("Follow Up", "#FFB300", None),
    ("Voicemail Drop", "#F4511E", None),
    ("Voice Virtual Agent", "#5C6BC0", None),
)

MISSED_CALL_REASONS = frozenset(
    {
        "out_of_opening_hours",
        "short_abandoned",
        "abandoned_in_ivr",
        "abandoned_in_classic",
        "no_available_agent",
        "agents_did_not_answer",
    }
)

MAX_COMMENTS = 5
MAX_CONTACT_DETAILS = 20
MAX_WEBHOOKS = 100
MAX_PER_PAGE = 50
MAX_PAGEABLE_ITEMS = 10_000


def iso(timestamp: float) -> str:
    """ISO-8601 UTC with milliseconds, as Aircall writes webhook and user ``created_at``."""
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def e164(value: str) -> str | None:
    """The E.164 form of ``value`` or None when it is not a possible phone number.

    A value without a leading ``+`` is read as digits with their country code (Aircall has no
    default region for the API). Spaces, dashes, dots and brackets are ignored.
    """
    text = value.strip()
    if not text:
        return None
    if not text.startswith("+"):
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def display(value: str) -> str:
    """International display format (``+44 330 818 6690``, ``+1 800-123-4567``) as libphonenumber
    writes it; ``anonymous`` stays as is."""
    if value == "anonymous":
        return value
    normalised = e164(value)
    if normalised is None:
        raise ValueError(f"not a phone number: {value!r}")
    parsed = phonenumbers.parse(normalised, None)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
