"""Issue 12, Person Accounts: the emulated org has them as Salesforce does once they are enabled,
and a person account's caller is logged with its ``PersonContactId`` as the Task's ``WhoId``."""

from __future__ import annotations

import json

import pytest

from integrations.aircall.emulator import Company
from integrations.errors import RemoteRejected
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Org
from integrations.salesforce.refusals import explain
from tests.conftest import Stack
from tests.helpers import AGENT_EMAIL, answered_inbound_call, logged, refusal, settled

CALLER = "+14155550100"
PERSON_FIELDS = ("IsPersonAccount", "PersonContactId", "PersonMobilePhone")


def _person(sf: SalesforceClient, **fields: str) -> tuple[str, dict]:
    account_id = sf.create("Account", {"FirstName": "Pat", "LastName": "Person", **fields})
    return account_id, sf.get("Account", account_id)


# -- the emulator -------------------------------------------------------------------------------


@pytest.mark.org("pristine")  # an org without Person Accounts
def test_describe_shows_person_accounts_only_once_they_are_enabled(
    org: Org, sf: SalesforceClient
) -> None:
    assert "IsPersonAccount" not in {f["name"] for f in sf.describe("Account")["fields"]}
    org.enable_person_accounts()
    fields = {f["name"]: f for f in sf.describe("Account")["fields"]}
    flag, person = fields["IsPersonAccount"], fields["PersonContactId"]
    assert (flag["type"], flag["createable"], flag["updateable"]) == ("boolean", False, False)
    assert (person["type"], person["referenceTo"], person["createable"]) == (
        "reference",
        ["Contact"],
        False,
    )
    for name in ("PersonMobilePhone", "PersonHomePhone", "PersonOtherPhone"):
        assert fields[name]["type"] == "phone"
    assert {"FirstName", "LastName", "Salutation", "PersonEmail", "PersonDoNotCall"} <= set(fields)
    assert "IsPersonAccount" in {f["name"] for f in sf.describe("Contact")["fields"]}


def test_a_person_account_has_a_computed_name_and_a_hidden_contact(
    org: Org, sf: SalesforceClient
) -> None:
    org.enable_person_accounts()
    business = sf.create("Account", {"Name": "Acme"})
    account_id, account = _person(sf, PersonMobilePhone="(415) 555-0100", Phone="+14155550111")
    assert (account["Name"], account["IsPersonAccount"]) == ("Pat Person", True)
    assert sf.get("Account", business)["IsPersonAccount"] is False
    contact = sf.get("Contact", account["PersonContactId"])
    assert (contact["Name"], contact["AccountId"], contact["IsPersonAccount"]) == (
        "Pat Person",
        account_id,
        True,
    )
    assert (contact["MobilePhone"], contact["Phone"]) == ("(415) 555-0100", "+14155550111")
    rows = sf.query("SELECT Id FROM Contact WHERE IsPersonAccount = true")
    assert [r["Id"] for r in rows] == [account["PersonContactId"]]
    # Writes go through the account, and the Contact follows.
    sf.update(
        "Account", account_id, {"FirstName": "Patricia", "PersonHomePhone": "+1 415 555 0122"}
    )
    contact = sf.get("Contact", account["PersonContactId"])
    assert (contact["Name"], contact["HomePhone"]) == ("Patricia Person", "+1 415 555 0122")
    assert sf.get("Account", account_id)["Name"] == "Patricia Person"


def test_what_salesforce_refuses_of_person_accounts(org: Org, sf: SalesforceClient) -> None:
    org.enable_person_accounts()
    with pytest.raises(RemoteRejected) as caught:
        sf.create("Account", {"Name": "Pat Person", "LastName": "Person"})
    error = refusal(caught)
    assert (error["errorCode"], error["fields"]) == ("INVALID_FIELD_FOR_INSERT_UPDATE", ["Name"])
    with pytest.raises(RemoteRejected) as caught:
        sf.create("Account", {"Name": "Acme", "PersonEmail": "pat@example.com"})
    assert refusal(caught)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(RemoteRejected) as caught:
        sf.create("Account", {"FirstName": "Pat", "IsPersonAccount": True, "Name": "Acme"})
    assert refusal(caught)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    account_id, account = _person(sf)
    with pytest.raises(RemoteRejected) as caught:
        sf.update("Account", account_id, {"Name": "Someone Else"})
    assert refusal(caught)["fields"] == ["Name"]
    with pytest.raises(RemoteRejected) as caught:
        sf.update("Contact", account["PersonContactId"], {"Title": "CEO"})
    assert refusal(caught)["errorCode"] == "INVALID_PERSON_ACCOUNT_OPERATION"
    said = explain(caught.value.error_code, json.dumps(caught.value.body), "Contact")
    assert said.headline == "the Contact belongs to a Person Account"
    assert "__pc" in said.fix


@pytest.mark.org("pristine")  # records made through the API here: no search-index lag
def test_search_finds_the_person_as_an_account_and_a_task_names_its_contact(
    org: Org, sf: SalesforceClient
) -> None:
    org.enable_person_accounts()
    account_id, account = _person(sf, PersonMobilePhone="(415) 555-0100")
    found = sf.search_phone(
        CALLER, {"Account": ["Id", "PersonContactId"], "Contact": ["Id", "MobilePhone"]}
    )
    assert [(r["attributes"]["type"], r["Id"]) for r in found] == [("Account", account_id)]
    assert found[0]["PersonContactId"] == account["PersonContactId"]
    task_id = sf.create(
        "Task", {"Subject": "Call", "WhoId": account["PersonContactId"], "WhatId": account_id}
    )
    assert sf.get("Task", task_id)["AccountId"] == account_id


@pytest.mark.org("pristine")  # an org without Person Accounts
def test_an_org_without_person_accounts_refuses_their_fields(
    org: Org, sf: SalesforceClient
) -> None:
    with pytest.raises(RemoteRejected) as caught:
        sf.create("Account", {"LastName": "Person"})
    assert refusal(caught)["errorCode"] == "INVALID_FIELD"
    with pytest.raises(RemoteRejected) as caught:
        sf.query("SELECT Id FROM Account WHERE IsPersonAccount = true")
    assert refusal(caught)["errorCode"] == "INVALID_FIELD"


# -- Callbridge, from the webhook to the org ----------------------------------------------------


def _line(company: Company) -> tuple[int, int]:
    agent = company.add_user("Jane Agent", AGENT_EMAIL)
    number = company.add_number("Support line", "+1 212 555 0199")
    return agent["id"], number["id"]


def _person_account(org: Org, **phones: str) -> dict:
    org.enable_person_accounts()
    account_id = org.insert("Account", {"FirstName": "Pat", "LastName": "Person", **phones})
    account = org.get("Account", account_id)
    assert account is not None
    return account


def test_a_person_account_caller_is_logged_with_its_person_contact(stack: Stack) -> None:
    account = _person_account(stack.org, PersonMobilePhone="(415) 555-0100")
    agent, number = _line(stack.company)
    answered_inbound_call(stack.company, number, agent, CALLER)
    stack.sender.drain(timeout=10)
    job = logged(stack.engine)
    assert job.status == "done", job.last_error
    (task,) = stack.org.records("Task")
    assert (task["WhoId"], task["WhatId"]) == (account["PersonContactId"], account["Id"])
    assert task["Subject"] == "Inbound call from Pat Person"
    described = stack.org.requests["GET sobjects/Account"]
    assert described == 1  # Account's describe, once: it says the org has Person Accounts


def test_the_card_shows_a_person_account_as_a_person(stack: Stack) -> None:
    _person_account(stack.org, PersonHomePhone=CALLER)
    agent, number = _line(stack.company)
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number, user_id=agent
    )
    stack.company.answer(call["id"], user_id=agent)
    stack.sender.drain(timeout=10)
    (job,) = settled(stack.engine, "insight_card")
    assert job.status == "done", job.last_error
    (card,) = stack.company.insight_cards
    shown = {c.get("label"): c["text"] for c in card["contents"]}
    assert shown["Record"] == "Person Account"
    assert "Company" not in shown
    assert card["contents"][0]["text"] == "Salesforce: Pat Person"


def test_a_person_phone_hidden_by_field_security_is_not_searched(stack: Stack) -> None:
    account = _person_account(stack.org, PersonOtherPhone=CALLER)
    stack.org.hide_field("Account", "PersonMobilePhone")
    agent, number = _line(stack.company)
    answered_inbound_call(stack.company, number, agent, CALLER)
    stack.sender.drain(timeout=10)
    job = logged(stack.engine)
    assert job.status == "done", job.last_error
    (task,) = stack.org.records("Task")
    assert task["WhoId"] == account["PersonContactId"]
    searches = [s for s in stack.org.statements if s.startswith("FIND")]
    assert searches
    assert not any("PersonMobilePhone" in s for s in searches)


@pytest.mark.org("pristine")  # an org without Person Accounts
def test_an_org_without_person_accounts_is_searched_as_before(stack: Stack) -> None:
    contact = stack.org.insert("Contact", {"LastName": "Jennings", "MobilePhone": CALLER})
    agent, number = _line(stack.company)
    answered_inbound_call(stack.company, number, agent, CALLER)
    stack.sender.drain(timeout=10)
    job = logged(stack.engine)
    assert job.status == "done", job.last_error
    (task,) = stack.org.records("Task")
    assert (task["WhoId"], task["WhatId"]) == (contact, None)
    assert stack.org.statements  # the search, the User, the org's time zone
    for statement in stack.org.statements:
        assert not any(name in statement for name in PERSON_FIELDS), statement
