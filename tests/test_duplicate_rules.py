"""Orgs with the standard duplicate rules set to block: a create that matches an existing record
is refused, and Callbridge links the call to the record the rule matched instead of failing."""

from __future__ import annotations

import pytest

from integrations.errors import RemoteRejected
from integrations.salesforce import duplicates
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Org
from integrations.salesforce.emulator.duplicates import STANDARD, DuplicateRule
from integrations.settings import Settings
from tests.conftest import SettingsWith, StackWith
from tests.helpers import AGENT_EMAIL, answered_inbound_call, settled, steps

CALLER = "+14155550100"


@pytest.fixture
def org() -> Org:
    """A customer's org: Salesforce's standard Lead and Contact duplicate rules, set to block,
    and a search index that lags behind writes (a record just made is not found yet)."""
    made = Org(sosl_delay=30.0)
    made.duplicate_rules.extend(STANDARD)
    return made


def test_a_blocked_create_names_the_record_it_matched(settings: Settings, org: Org) -> None:
    existing = org.insert("Lead", {"LastName": "Lee", "Company": "ACME", "Email": "ada@x.io"})
    sf = SalesforceClient(settings)
    try:
        with pytest.raises(RemoteRejected) as refused:
            sf.create("Lead", {"LastName": "Other", "Company": "Else", "Email": "ADA@x.io"})
        (outcome,) = sf.create_many(
            "Lead", [{"LastName": "Other", "Company": "Else", "Email": "ada@x.io"}]
        )
    finally:
        sf.close()
    assert refused.value.error_code == "DUPLICATES_DETECTED"
    (entry,) = refused.value.body
    assert "duplicateResut" in entry  # the key as real orgs spell it
    assert duplicates.matched(refused.value) == [
        duplicates.Duplicate("Lead", existing, "Standard_Lead_Duplicate_Rule")
    ]
    # A collection reports the code alone, as Salesforce's do.
    assert outcome.error is not None
    assert outcome.error.body == [
        {"statusCode": "DUPLICATES_DETECTED", "message": "Use one of these records?", "fields": []}
    ]
    assert [lead["Id"] for lead in org.records("Lead")] == [existing]


def test_alert_rules_are_saved_past_with_the_setting_and_block_rules_are_not(
    settings_with: SettingsWith, org: Org
) -> None:
    org.duplicate_rules[:] = [
        DuplicateRule("Alert_On_Email", "Lead", (("Email",),), "alert"),
        DuplicateRule("Block_On_Phone", "Lead", (("Phone",),), "block"),
    ]
    org.insert("Lead", {"LastName": "Lee", "Company": "ACME", "Email": "ada@x.io", "Phone": "1"})
    strict = SalesforceClient(settings_with())
    saving = SalesforceClient(settings_with(salesforce_duplicate_allow_save=True))
    try:
        with pytest.raises(RemoteRejected):
            strict.create("Lead", {"LastName": "Two", "Company": "B", "Email": "ada@x.io"})
        saving.create("Lead", {"LastName": "Two", "Company": "B", "Email": "ada@x.io"})
        (outcome,) = saving.create_many(
            "Lead", [{"LastName": "Three", "Company": "C", "Email": "ada@x.io"}]
        )
        with pytest.raises(RemoteRejected) as blocked:
            saving.create("Lead", {"LastName": "Four", "Company": "D", "Phone": "1"})
    finally:
        strict.close()
        saving.close()
    assert outcome.error is None
    assert blocked.value.error_code == "DUPLICATES_DETECTED"
    assert sorted(lead["LastName"] for lead in org.records("Lead")) == ["Lee", "Three", "Two"]


def test_a_new_callers_blocked_lead_links_the_call_to_the_existing_one(
    stack_with: StackWith,
) -> None:
    """The caller's Lead exists but the search index has not caught up: Callbridge's create is
    refused by the rule, so the call is logged on the Lead the rule matched, and so is the
    caller's next call, without another create."""
    with stack_with(create_unknown_callers="lead") as stack:
        # Made a moment ago (a web-to-lead form, say): not in the search index yet.
        lead = {"LastName": "Lee", "Company": "ACME", "Phone": "(415) 555-0100"}
        existing = stack.org.create("Lead", lead)["id"]
        agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
        number = stack.company.add_number("Support line", "+1 212 555 0199")
        first = answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
        stack.sender.drain(timeout=10)
        settled(stack.engine, "log_call")
        second = answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
        stack.sender.drain(timeout=10)
        settled(stack.engine, "log_call", count=2)
        assert [lead["Id"] for lead in stack.org.records("Lead")] == [existing]
        tasks = {t["CallObject"]: t for t in stack.org.records("Task")}
        assert [tasks[str(c)]["WhoId"] for c in (first, second)] == [existing, existing]
        (attempt,) = steps(stack.engine, "create Lead")
        assert attempt.ok
        assert "Standard_Lead_Duplicate_Rule" in attempt.received["linked"]
