"""Issue 12, Person Accounts and dispositions: a person account's person is changed through its
Account (Salesforce refuses writes to the hidden Contact), and its follow-ups name the Contact."""

from __future__ import annotations

from integrations.sync.automations import dispositions
from integrations.sync.automations.suppression import is_suppressed
from tests.conftest import Stack, StackWith
from tests.helpers import AGENT_EMAIL, settled

CALLER = "+14155550100"


def _person_account(stack: Stack) -> dict:
    stack.org.enable_person_accounts()
    account_id = stack.org.insert(
        "Account", {"FirstName": "Pat", "LastName": "Person", "PersonMobilePhone": CALLER}
    )
    account = stack.org.get("Account", account_id)
    assert account is not None
    return account


def _tagged(stack: Stack, tag: str, **rule: object) -> None:
    (key,) = [r.key for r in dispositions.rules(stack.engine) if tag in r.tags]
    dispositions.set_rule(stack.engine, key, by="manager@example.com", **rule)
    stack.company.add_tag(tag)
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)["id"]
    number = stack.company.add_number("Sales line", "+1 212 555 0199")["id"]
    call = stack.company.start_call(
        direction="outbound", external=CALLER, number_id=number, user_id=agent
    )
    stack.company.answer(call["id"], user_id=agent)
    stack.company.hangup(call["id"])
    stack.company.end(call["id"])
    stack.company.tag(call["id"], tag, user_id=agent)
    stack.sender.drain(timeout=10)
    (job,) = settled(stack.engine, "disposition")
    assert job.status == "done", job.last_error
    settled(stack.engine, "log_call")


def test_do_not_call_on_a_person_account_is_set_on_the_account(stack: Stack) -> None:
    account = _person_account(stack)
    _tagged(stack, "DNC Requested", lead_status="Closed - Not Converted")
    after = stack.org.get("Account", account["Id"])
    assert (after["PersonDoNotCall"], after["PersonHasOptedOutOfEmail"]) == (True, True)
    person = stack.org.get("Contact", account["PersonContactId"])
    assert (person["DoNotCall"], person["HasOptedOutOfEmail"]) == (True, True)
    assert is_suppressed(stack.engine, CALLER)
    (task,) = stack.org.records("Task")
    assert task["WhoId"] == account["PersonContactId"]


def test_a_wrong_number_flags_the_person_accounts_own_custom_field(stack: Stack) -> None:
    stack.org.add_field("Contact", "Phone_Invalid__c", "boolean")
    account = _person_account(stack)  # Person Accounts on after the field: Account has __pc
    _tagged(stack, "Wrong Number", options={"flag_field": "Phone_Invalid__c"})
    after = stack.org.get("Account", account["Id"])
    assert after["Phone_Invalid__pc"] is True
    assert f"Wrong number: {CALLER}" in after["Description"]
    assert stack.org.get("Contact", account["PersonContactId"])["Phone_Invalid__c"] is True


def test_a_person_accounts_status_and_callback_go_through_the_account(
    stack_with: StackWith,
) -> None:
    with stack_with(DISPOSITION_CONTACT_STATUS_FIELD="Call_Status__c") as stack:
        stack.org.enable_person_accounts()
        stack.org.add_field("Contact", "Call_Status__c", "string", length=40)  # then on Account
        account = _person_account(stack)
        _tagged(stack, "Callback Requested", contact_status="Call back")
        after = stack.org.get("Account", account["Id"])
        assert after["Call_Status__pc"] == "Call back"
        (follow_up,) = [t for t in stack.org.records("Task") if t["Subject"] == "Schedule Callback"]
        assert follow_up["WhoId"] == account["PersonContactId"]
