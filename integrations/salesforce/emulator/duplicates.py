"""Duplicate rules, as admins set them on Leads and Contacts: a create (or an update) that
matches a live record is refused with ``DUPLICATES_DETECTED``.

A rule matches on groups of fields (any group: e-mail; phone; first name + last name + company),
compared ignoring case and, for phones, everything but digits. ``block`` rules always refuse;
``alert`` rules refuse unless the request sent ``Sforce-Duplicate-Rule-Header: allowSave=true``.
A single-record refusal carries the matches under the key ``duplicateResut`` (sic: real orgs
spell it so); sObject Collections report the code and message only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ApiError

MESSAGE = "Use one of these records?"


@dataclass(frozen=True)
class DuplicateRule:
    name: str
    sobject: str
    match_on: tuple[tuple[str, ...], ...]
    action: str = "block"  # block | alert
    active: bool = True  # an inactive rule is listed in Setup (and by SOQL) but never refuses


def _key(field: str, value: object) -> str | None:
    if value in (None, ""):
        return None
    text = str(value).strip().casefold()
    return re.sub(r"\D", "", text)[-10:] or None if "phone" in field.casefold() else text


def _matches(rule: DuplicateRule, record: dict, other: dict) -> bool:
    for group in rule.match_on:
        mine = [_key(f, record.get(f)) for f in group]
        if all(mine) and mine == [_key(f, other.get(f)) for f in group]:
            return True
    return False


def _url(version: str, sobject: str, record: dict) -> str:
    return f"/services/data/v{version}/sobjects/{sobject}/{record['Id']}"


def check(
    rules: list[DuplicateRule],
    sobject: str,
    record: dict,
    live: list[dict],
    *,
    allow_save: bool,
    version: str = "59.0",
) -> None:
    """Refuse ``record`` when a rule of ``sobject`` finds it among the ``live`` records."""
    for rule in rules:
        if not rule.active or rule.sobject != sobject or (rule.action == "alert" and allow_save):
            continue
        found = [r for r in live if r["Id"] != record.get("Id") and _matches(rule, record, r)]
        if not found:
            continue
        detail = {
            "allowSave": rule.action == "alert",
            "duplicateRule": rule.name,
            "duplicateRuleEntityType": sobject,
            "errorMessage": MESSAGE,
            "matchResults": [
                {
                    "entityType": sobject,
                    "errors": [],
                    "matchEngine": "FuzzyMatchEngine",
                    "matchRecords": [
                        {
                            "additionalInformation": [],
                            "fieldDiffs": [],
                            "matchConfidence": 100.0,
                            "record": {
                                "attributes": {"type": sobject, "url": _url(version, sobject, r)},
                                "Id": r["Id"],
                            },
                        }
                        for r in found
                    ],
                    "rule": f"{rule.name.replace('Duplicate', 'Match')}_v1_0",
                    "size": len(found),
                    "success": True,
                }
            ],
        }
        raise ApiError(400, "DUPLICATES_DETECTED", MESSAGE, None, {"duplicateResut": detail})


STANDARD = (
    DuplicateRule(
        "Standard_Lead_Duplicate_Rule",
        "Lead",
        (("Email",), ("Phone",), ("FirstName", "LastName", "Company")),
    ),
    DuplicateRule(
        "Standard_Contact_Duplicate_Rule",
        "Contact",
        (("Email",), ("Phone",), ("FirstName", "LastName", "AccountId")),
    ),
)
