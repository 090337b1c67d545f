"""What a Salesforce refusal means, in the words of someone who knows Setup but not our code.

``explain`` reads the refusal as stored (the error body, verbatim) and returns a headline that
names the field at fault, what it means and where in Salesforce to fix it. The body itself is
kept as it came: this only adds words beside it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_FIELDS_IN_MESSAGE = re.compile(r"\[([^\]]*)\]")
_LABEL_BEFORE_COLON = re.compile(r"^([^:]{1,80}):")
# An Apex exception as a trigger's refusal quotes it: "LeadTrigger: execution of BeforeInsert
# \n\ncaused by: System.DmlException: <the trigger's message>\n\nTrigger.LeadTrigger: line 7, ..."
_APEX_CAUSE = re.compile(
    r"caused by: [\w.]+: (?P<text>.+?)\s*(?:\n\s*\n|(?:Trigger|Class)\.[\w.]+: line \d|$)",
    re.DOTALL,
)
# A failed DML inside the trigger: "Insert failed. First exception on row 0; first error: CODE, ..."
_FIRST_ERROR = re.compile(r"first error: [A-Z_]+, (?P<text>.+?)(?:: \[[^\]]*\])?$", re.DOTALL)


@dataclass(frozen=True)
class Refusal:
    """The first error of a stored Salesforce (or Aircall) error body."""

    code: str
    message: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Explanation:
    headline: str  # "a required field is missing: Industry"
    meaning: str  # what it means for the call
    fix: str  # where to fix it, in Setup's words
    fields: tuple[str, ...]  # the fields at fault, when Salesforce named them


def is_salesforce_code(code: str | None) -> bool:
    """Salesforce's error codes are UPPER_SNAKE; Callbridge stores exception names otherwise."""
    return code is not None and code != "" and code == code.upper()


def parse(error_code: str | None, body: str | None) -> Refusal:
    """The code, message and fields of the first error in ``body`` (any of Salesforce's shapes)."""
    try:
        data = json.loads(body or "")
    except ValueError:
        data = body or ""
    first = data[0] if isinstance(data, list) and data else data
    if isinstance(first, dict):
        code = str(first.get("errorCode") or first.get("statusCode") or error_code or "")
        message = str(first.get("message") or first.get("error_description") or "")
        fields = first.get("fields") or []
        if not isinstance(fields, list):
            fields = []
        return Refusal(code, message, tuple(str(f) for f in fields if f))
    return Refusal(error_code or "", str(first)[:500], ())


def _named(refusal: Refusal) -> tuple[str, ...]:
    """The fields at fault: Salesforce's ``fields``, else ``[A, B]`` or ``Label:`` in the text."""
    if refusal.fields:
        return refusal.fields
    bracket = _FIELDS_IN_MESSAGE.search(refusal.message)
    if bracket and refusal.code == "REQUIRED_FIELD_MISSING":
        return tuple(f.strip() for f in bracket[1].split(",") if f.strip())
    return ()


def _trigger_message(message: str) -> str:
    """The trigger's own words in an Apex refusal, without the stack's boilerplate."""
    cause = _APEX_CAUSE.search(message)
    if cause is None:
        return message.split(": ", 1)[-1] if ": " in message else message
    text = cause["text"]
    dml = _FIRST_ERROR.search(text)
    return " ".join((dml["text"] if dml else text).split())


def explain(error_code: str | None, body: str | None, sobject: str = "") -> Explanation:
    """Plain words for a refusal stored as ``error_code`` and ``body`` on a write to ``sobject``."""
    refusal = parse(error_code, body)
    fields = _named(refusal)
    named = ", ".join(fields)
    thing = sobject or "the record"
    fields_page = (
        f"Setup → Object Manager → {sobject} → Fields & Relationships"
        if sobject
        else "Setup → Object Manager → the object → Fields & Relationships"
    )
    code = refusal.code
    if code == "REQUIRED_FIELD_MISSING":
        return Explanation(
            f"a required field is missing: {named or refusal.message}",
            f"Salesforce requires {named or 'a field'} on every {thing}, and Callbridge sent none.",
            f"Map a value to {named or 'the field'} in the field mapping of {thing}, or make it "
            f"optional in {fields_page}.",
            fields,
        )
    if code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST":
        value = refusal.message.rsplit(":", 1)[-1].strip()
        return Explanation(
            f"a value is not in the picklist {named or ''}: {value}".replace("  ", " "),
            f"{named or 'The field'} only takes values from its picklist, and {value!r} is not "
            "one of them (or is inactive).",
            f"Change the value in the field mapping or the disposition rule, or add it to the "
            f"picklist in {fields_page} → {named or 'the field'} → Values.",
            fields,
        )
    if code == "FIELD_CUSTOM_VALIDATION_EXCEPTION":
        return Explanation(
            f"a validation rule refused it: {refusal.message}",
            f"A validation rule of your org refused the {thing}; its text is the admin's own.",
            f"Setup → Object Manager → {sobject or 'the object'} → Validation Rules: change the "
            "rule, or map the values it wants.",
            fields,
        )
    if code in {"CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "CANNOT_EXECUTE_FLOW_TRIGGER"}:
        inner = _trigger_message(refusal.message)
        return Explanation(
            f"an Apex trigger or flow refused it: {inner[:200]}",
            f"Code your org runs when a {thing} is saved (an Apex trigger, a flow or a process) "
            "threw an error; its message is above.",
            f"Setup → Object Manager → {sobject or 'the object'} → Triggers, or Setup → Flows: "
            "have its owner handle this case (or map the values it expects).",
            fields,
        )
    if code == "DUPLICATES_DETECTED":
        return Explanation(
            "a duplicate rule blocked it",
            f"An active duplicate rule found an existing {thing} like this one and blocked the "
            "save.",
            "Setup → Duplicate Management → Duplicate Rules: set the rule's action to Allow with "
            "an alert and set SALESFORCE_DUPLICATE_ALLOW_SAVE=true, or deactivate the rule.",
            fields,
        )
    if code == "DUPLICATE_VALUE":
        return Explanation(
            f"a unique field already has this value: {refusal.message}",
            "A field marked Unique already holds this value on another record.",
            f"{fields_page}: check the Unique field, or merge the two records.",
            fields,
        )
    if code in {"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE"}:
        return Explanation(
            f"a field cannot be used: {named or refusal.message}",
            "The integration user cannot see or set this field (field-level security), or it "
            "does not exist.",
            f"{fields_page} → the field → Set Field-Level Security: make it visible (and not "
            "read-only) for the integration user's profile, or remove it from the mapping.",
            fields,
        )
    if code == "STRING_TOO_LONG":
        return Explanation(
            f"a value is too long for {named or 'a field'}",
            "The text is longer than the field's length.",
            f"{fields_page} → {named or 'the field'}: raise its length, or map a shorter value.",
            fields,
        )
    if code in {"INSUFFICIENT_ACCESS_OR_READONLY", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"}:
        return Explanation(
            "the integration user has no access",
            f"The integration user may not create or edit this {thing}, or may not see the "
            "record it points at (the contact, the owner).",
            "Setup → Users → the integration user → Profile / Permission Sets: grant Create and "
            "Edit on the object; Setup → Sharing Settings for record access.",
            fields,
        )
    if code in {"INACTIVE_OWNER_OR_USER"}:
        return Explanation(
            "the owner is an inactive user",
            "The record would be owned by a Salesforce User who is deactivated.",
            "Automations → Agents & backfill in Callbridge: tie the agent to an active User.",
            fields,
        )
    if code == "INVALID_PERSON_ACCOUNT_OPERATION":
        return Explanation(
            "the Contact belongs to a Person Account",
            "Salesforce takes changes to a person account's person only through its Account.",
            "Point the step at the Person Account (its fields are named Person…, custom ones "
            "end in __pc) instead of its Contact.",
            fields,
        )
    if code in {"ENTITY_IS_DELETED", "NOT_FOUND"}:
        return Explanation(
            "the record no longer exists",
            "The record was deleted (or merged) in Salesforce after Callbridge linked to it.",
            "Re-sync the call: Callbridge looks for the caller again and writes to what exists.",
            fields,
        )
    if code == "INVALID_CROSS_REFERENCE_KEY" and refusal.message.startswith("Record Type ID"):
        return Explanation(
            "the record type is not one the integration user may use",
            f"Salesforce refused the {thing}'s record type: it does not exist on this object, "
            "is inactive, or is not given to the integration user's profile.",
            "Check LEAD_RECORD_TYPE, CONTACT_RECORD_TYPE or OPPORTUNITY_RECORD_TYPE (Health "
            "says which is wrong), and Setup → Profiles → the integration user's profile → "
            "Record Type Settings.",
            fields,
        )
    if code in {"MALFORMED_ID", "FIELD_INTEGRITY_EXCEPTION", "INVALID_CROSS_REFERENCE_KEY"}:
        label = _LABEL_BEFORE_COLON.match(refusal.message)
        return Explanation(
            f"a record id is not valid here: {label[1] if label else named or refusal.message}",
            "A lookup points at a record of the wrong type, one the user cannot see, or none.",
            "Check the lookup fields in the field mapping (WhoId is a Contact or Lead, WhatId "
            "anything else), and the record type's availability for the integration user.",
            fields,
        )
    if code == "INVALID_EMAIL_ADDRESS":
        return Explanation(
            "an e-mail address is not valid",
            "Salesforce refused the e-mail address Callbridge sent.",
            "Fix the contact's e-mail in Aircall, or map another value to the field.",
            fields,
        )
    if code in {"CANNOT_UPDATE_CONVERTED_LEAD", "ENTITY_IS_LOCKED"}:
        return Explanation(
            "the record is read-only",
            "The Lead was converted, or an approval process locked the record.",
            "Re-sync the call: Callbridge follows a converted Lead to its Contact; unlock the "
            "record in Salesforce otherwise.",
            fields,
        )
    if code in {"UNABLE_TO_LOCK_ROW", "UNKNOWN_EXCEPTION", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT"}:
        return Explanation(
            "Salesforce was busy" if code != "UNABLE_TO_LOCK_ROW" else "the record was locked",
            "Salesforce could not do it just then (another update held the record, or it was "
            "overloaded); it usually works on a later try.",
            "Nothing to fix: Callbridge tries again on its own.",
            fields,
        )
    if code == "REQUEST_LIMIT_EXCEEDED":
        return Explanation(
            "the org's daily API limit is reached",
            "Salesforce refuses API requests until the rolling 24-hour count falls.",
            "Setup → Company Information → API Requests, Last 24 Hours; Callbridge retries on "
            "its own.",
            fields,
        )
    if code in {"INVALID_SESSION_ID", "invalid_grant", "invalid_client_id", "invalid_client"}:
        return Explanation(
            "Salesforce refused Callbridge's credentials",
            "The connection to Salesforce no longer works (revoked, expired or misconfigured).",
            "Automations → Connections in Callbridge: connect Salesforce again.",
            fields,
        )
    return Explanation(
        f"Salesforce refused it ({code or 'no code'}): {refusal.message[:200]}",
        "Salesforce gave this refusal in its own words above.",
        "Read Salesforce's message; after the fix, re-sync the calls.",
        fields,
    )
