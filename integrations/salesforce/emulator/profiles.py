"""Orgs as Callbridge meets them: a pristine one, and a messy one such as real customers run.

``messy()`` is what the test suite runs against by default (``tests/conftest.py``): the standard
duplicate rules set to Block, an admin's validation rule on Task and an Apex trigger on Lead that
refuse only under their own conditions, a required custom field on Lead that has a default, a
unique field, two Lead record types with their own Status values (``Sales_Lead``, the default,
and ``Partner_Lead``), Person Accounts, and a search index that lags API writes by a few
seconds. Records seeded with ``Org.insert`` predate all of it (indexed, never refused), as an
org's existing data does.
"""

from __future__ import annotations

import re

from .duplicates import STANDARD
from .org import Org

SOSL_LAG_SECONDS = 3.0
# A card number in the call notes: 16 digits, optionally in groups of four (phone numbers,
# at most 15 digits, never match).
CARD_NUMBER = re.compile(r"\b(?:\d{4}[ -]?){3}\d{4}\b")
CARD_RULE = "No_Card_Numbers_In_Notes"
CARD_MESSAGE = "Remove the card number from the call notes: card data may not be stored in CRM."
BLOCKED_COMPANY = "Blocked Inc"
LEAD_TRIGGER = "LeadScreening"
SALES_LEAD, PARTNER_LEAD = "Sales_Lead", "Partner_Lead"
STATUSES = [
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
]
PARTNER_STATUSES = ("Partner - New", "Partner - Qualified")
LEAD_TRIGGER_MESSAGE = "Blocked Inc is on credit hold: Sales may not add its people as Leads."


def pristine(**options: object) -> Org:
    """An org as created: no rules of any admin, a search index without lag."""
    return Org(sosl_delay=0.0, **options)  # type: ignore[arg-type]


def messy(**options: object) -> Org:
    """An org after years of admins (the suite's default); ``options`` go to ``Org``."""
    org = Org(**{"sosl_delay": SOSL_LAG_SECONDS, **options})  # type: ignore[arg-type]
    org.duplicate_rules.extend(STANDARD)  # both with the action Block
    org.add_validation_rule(
        "Task",
        CARD_RULE,
        lambda task: bool(CARD_NUMBER.search(task.get("Description") or "")),
        CARD_MESSAGE,
        field="Description",
    )
    org.add_trigger_error(
        "Lead",
        LEAD_TRIGGER,
        lambda lead: (lead.get("Company") or "").strip().casefold() == BLOCKED_COMPANY.casefold(),
        LEAD_TRIGGER_MESSAGE,
    )
    # Required on every Lead ("Always require a value" in Setup) with a default value, so
    # describe says nillable: false, defaultedOnCreate: true; an explicit null is refused.
    org.add_field(
        "Lead",
        "Region__c",
        "picklist",
        picklistValues=["Unassigned", "AMER", "EMEA", "APAC"],
        nillable=False,
        defaulted_on_create=True,
        defaultValue="Unassigned",
        restrictedPicklist=True,
    )
    # A migration key from the previous CRM, unique as its admins set it (DUPLICATE_VALUE).
    org.add_field("Contact", "Legacy_Id__c", "string", length=20, unique=True, externalId=True)
    # Two Lead record types with different Status values: Sales_Lead (the default, the standard
    # statuses) and Partner_Lead (a partner programme's own).
    org.add_picklist_values("Lead", "Status", list(PARTNER_STATUSES))
    org.add_record_type(
        "Lead", SALES_LEAD, "Sales Lead", picklists={"Status": STATUSES}, default=True
    )
    org.add_record_type(
        "Lead",
        PARTNER_LEAD,
        "Partner Lead",
        picklists={"Status": [*PARTNER_STATUSES, "Closed - Not Converted"]},
        defaults={"Status": PARTNER_STATUSES[0]},
    )
    org.enable_person_accounts()  # B2C orgs have them; Salesforce cannot turn them off
    return org


PROFILES = {"pristine": pristine, "messy": messy}
