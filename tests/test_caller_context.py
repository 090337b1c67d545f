"""The caller card's context comes with the caller's search: no request of its own for a matched
caller, one for an account's open opportunity (shared by the account's people), and one SOQL
only for a record known without a search (a pick)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from integrations.errors import RemoteRejected
from integrations.loopback import wait_for
from integrations.salesforce import access
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Fault, Org
from integrations.settings import Settings
from integrations.store.models import Call
from integrations.sync.callers import matching
from integrations.sync.callers.matching import (
    Match,
    Policy,
    caller_matches,
    decide,
    remember_caller,
)
from integrations.sync.calls.context_card import caller_context, card_lines
from tests.conftest import Stack, StackWith
from tests.helpers import AGENT_EMAIL, settled

CALLER = "+14155550100"
OTHER = "+14155550177"


@pytest.fixture
def sf(settings: Settings) -> Iterator[SalesforceClient]:
    client = SalesforceClient(settings)
    client.query("SELECT Id FROM Organization LIMIT 1")  # sign in first: not counted below
    access.describe(client, "Account")  # read once a client (Person Accounts?): not counted
    yield client
    client.close()


def _card(engine: Engine, sf: SalesforceClient, e164: str) -> tuple[dict[str, Any], int]:
    """What the insight card job does: the caller's matches, then the chosen record's context;
    with the Salesforce requests it took."""
    before = sf.usage.total_requests
    policy = Policy()
    matches = caller_matches(engine, sf, e164, region="US", max_age=60, policy=policy)
    chosen = decide(matches, policy).match
    assert chosen is not None
    context = caller_context(engine, sf, e164, chosen, max_age=60)
    return context, sf.usage.total_requests - before


def _account(org: Org, name: str, opportunity: str | None = None) -> str:
    account = org.insert("Account", {"Name": name})
    if opportunity:
        org.insert(
            "Opportunity",
            {
                "Name": opportunity,
                "AccountId": account,
                "StageName": "Negotiation/Review",
                "CloseDate": "2031-01-31",
            },
        )
    return account


def test_a_matched_leads_card_costs_only_the_search(
    engine: Engine, sf: SalesforceClient, org: Org
) -> None:
    owner = org.add_user("Olivia Owner", "olivia@example.com")
    org.insert(
        "Lead",
        {"LastName": "Lee", "Company": "Initech", "Phone": "(415) 555-0100", "OwnerId": owner},
    )
    context, spent = _card(engine, sf, CALLER)
    assert spent == 1  # the SOSL search
    assert dict(card_lines(context)) == {
        "Owner": "Olivia Owner",
        "Company": "Initech",
        "Lead status": "Open - Not Contacted",
        "Last updated": context["updated"],
    }
    again, spent = _card(engine, sf, CALLER)
    assert (again, spent) == (context, 0)


def test_a_contacts_card_adds_one_query_for_its_accounts_opportunity(
    engine: Engine, sf: SalesforceClient, org: Org
) -> None:
    account = _account(org, "Acme Corp", "Acme renewal")
    org.insert("Contact", {"LastName": "Jennings", "Phone": CALLER, "AccountId": account})
    org.insert("Contact", {"LastName": "Alone", "Phone": "+14155550111"})
    context, spent = _card(engine, sf, CALLER)
    assert spent == 2  # the search, the open opportunity
    assert (context["company"], context["owner"]) == ("Acme Corp", "Integration User")
    assert (context["opportunity"], context["stage"]) == ("Acme renewal", "Negotiation/Review")
    alone, spent = _card(engine, sf, "+14155550111")
    assert spent == 1  # no account: no opportunity to look for
    assert "opportunity" not in alone


def test_people_of_one_account_share_its_opportunity(
    engine: Engine, sf: SalesforceClient, org: Org
) -> None:
    account = _account(org, "Acme Corp", "Acme renewal")
    quiet = _account(org, "Quiet Ltd")
    org.insert("Contact", {"LastName": "Jennings", "Phone": CALLER, "AccountId": account})
    org.insert("Contact", {"LastName": "Smith", "Phone": OTHER, "AccountId": account})
    org.insert("Contact", {"LastName": "Q1", "Phone": "+14155550131", "AccountId": quiet})
    org.insert("Contact", {"LastName": "Q2", "Phone": "+14155550132", "AccountId": quiet})
    first, spent_first = _card(engine, sf, CALLER)
    second, spent_second = _card(engine, sf, OTHER)
    assert (spent_first, spent_second) == (2, 1)
    assert second["opportunity"] == first["opportunity"] == "Acme renewal"
    assert second["name"] == "Smith"
    # An account without an open opportunity is shared too: "none" is an answer.
    assert [_card(engine, sf, n)[1] for n in ("+14155550131", "+14155550132")] == [2, 1]


def test_a_new_search_brings_the_records_changes_without_a_query(
    engine: Engine, sf: SalesforceClient, org: Org
) -> None:
    lead = org.insert("Lead", {"LastName": "Lee", "Company": "Initech", "Phone": CALLER})
    context, _ = _card(engine, sf, CALLER)
    assert context["owner"] == "Integration User"
    new_owner = org.add_user("Olivia Owner", "olivia@example.com")
    sf.update("Lead", lead, {"OwnerId": new_owner, "Status": "Working - Contacted"})
    before = sf.usage.total_requests
    policy = Policy()
    caller_matches(engine, sf, CALLER, region="US", max_age=0, policy=policy)  # cache expired
    match = decide(
        caller_matches(engine, sf, CALLER, region="US", max_age=60, policy=policy), policy
    )
    assert match.match is not None
    fresh = caller_context(engine, sf, CALLER, match.match, max_age=60)
    assert sf.usage.total_requests - before == 1  # the new search alone
    assert (fresh["owner"], fresh["lead_status"]) == ("Olivia Owner", "Working - Contacted")


def test_a_picked_record_is_read_with_one_query(
    engine: Engine, sf: SalesforceClient, org: Org
) -> None:
    org.insert("Contact", {"LastName": "Jennings", "Phone": CALLER})
    lead = org.insert("Lead", {"LastName": "Lee", "Company": "Initech", "Phone": CALLER})
    _card(engine, sf, CALLER)  # the Contact wins by priority
    picked = Match("Lead", lead, "Lee")
    remember_caller(engine, CALLER, picked, pinned=True)
    before = sf.usage.total_requests
    context = caller_context(engine, sf, CALLER, picked, max_age=60)
    assert sf.usage.total_requests - before == 1
    assert (context["id"], context["company"]) == (lead, "Initech")


def test_a_card_field_the_user_cannot_read_does_not_stop_matching(
    engine: Engine, sf: SalesforceClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead = org.insert("Lead", {"LastName": "Lee", "Company": "Initech", "Phone": CALLER})
    # As Salesforce answers a field hidden from the integration user: INVALID_FIELD.
    monkeypatch.setitem(matching.CONTEXT_FIELDS, "Lead", ["Name", "Owner.Department"])
    with pytest.raises(RemoteRejected):
        sf.search_phone(CALLER, Policy().returning())
    context, spent = _card(engine, sf, CALLER)
    assert spent == 3  # the refused search, the search without card fields, the record's SOQL
    assert (context["id"], context["lead_status"]) == (lead, "Open - Not Contacted")


@pytest.mark.parametrize("field", ["Owner.Name) , Lead(Id", "Owner..Name", "Owner.Name__c'"])
def test_search_fields_must_be_api_names(sf: SalesforceClient, field: str) -> None:
    before = sf.usage.total_requests
    with pytest.raises(ValueError, match="not a Salesforce API name"):
        sf.search_phone(CALLER, {"Contact": ["Id", field]})
    assert sf.usage.total_requests == before


@pytest.fixture
def stack(stack_with: StackWith) -> Iterator[Stack]:
    # Logged once the call has ended, so the card is the only Salesforce work while it rings.
    with stack_with(task_logged_at="end") as running:
        yield running


def test_the_insight_card_of_a_known_caller_costs_one_request(stack: Stack) -> None:
    owner = stack.org.add_user("Olivia Owner", "olivia@example.com")
    stack.org.insert(
        "Lead", {"LastName": "Lee", "Company": "Initech", "Phone": CALLER, "OwnerId": owner}
    )
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number["id"], user_id=agent["id"]
    )
    stack.company.answer(call["id"], user_id=agent["id"])
    stack.sender.drain(timeout=10)
    (job,) = settled(stack.engine, "insight_card")
    assert job.status == "done", job.last_error
    (card,) = stack.company.insight_cards
    shown = {c.get("label"): c["text"] for c in card["contents"]}
    assert (shown["Owner"], shown["Company"]) == ("Olivia Owner", "Initech")
    assert shown["Lead status"] == "Open - Not Contacted"
    with Session(stack.engine) as s:
        # The search, and Account's describe (read once a worker: does the org have Person
        # Accounts?).
        assert s.get(Call, call["id"]).sf_requests == 2


def test_a_card_for_a_call_that_ended_meanwhile_is_skipped_not_failed(stack: Stack) -> None:
    """The caller's search is slow and the call ends in Aircall before its end's webhook
    reaches us: Aircall refuses the card, and Callbridge asks Aircall whether the call is over
    instead of parking a failure a manager could do nothing about."""
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    stack.org.faults.add(Fault(method="GET", path=r"/search", kind="delay", delay=2.0))
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number["id"], user_id=agent["id"]
    )
    stack.company.answer(call["id"], user_id=agent["id"])
    stack.sender.drain(timeout=10)
    wait_for(lambda: not stack.org.faults.pending(), timeout=10)  # the search is on its way
    for hook in stack.company.list_webhooks():  # the end's webhook is late
        stack.company.update_webhook(hook["webhook_id"], {"active": False})
    stack.company.hangup(call["id"])
    stack.company.end(call["id"])
    (job,) = settled(stack.engine, "insight_card")
    assert (job.status, job.result) == ("done", {"skipped": "call ended before the card was ready"})
    assert stack.company.insight_cards == []
