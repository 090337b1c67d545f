"""Field-level security: the emulator refuses hidden fields as Salesforce does, and Callbridge
leaves out what the integration user cannot see or set instead of failing on it."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from integrations.aircall.emulator import Company
from integrations.errors import RemoteRejected
from integrations.loopback import wait_for
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Org
from integrations.salesforce.emulator.duplicates import STANDARD, DuplicateRule
from integrations.store.salesforce_sync import PollWatermark
from tests.conftest import Stack, StackWith
from tests.helpers import AGENT_EMAIL, answered_inbound_call, refusal, settled
from tests.test_health import checked

NO_SUCH_COLUMN = (
    "No such column 'AssistantPhone' on entity 'Contact'. If you are attempting to use a custom "
    "field, be sure to append the '__c' after the custom field name. Please reference your WSDL "
    "or the describe call for the appropriate names."
)


def test_a_hidden_field_is_absent_from_describe_and_read_only_one_not_settable(
    org: Org, sf: SalesforceClient
) -> None:
    org.hide_field("Contact", "AssistantPhone")
    org.make_read_only("Contact", "HomePhone")
    fields = {f["name"]: f for f in sf.describe("Contact")["fields"]}
    assert "AssistantPhone" not in fields
    assert (fields["HomePhone"]["createable"], fields["HomePhone"]["updateable"]) == (False, False)
    assert fields["MobilePhone"]["updateable"] is True
    org.show_field("Contact", "AssistantPhone")
    assert "AssistantPhone" in {f["name"] for f in sf.describe("Contact")["fields"]}


def test_soql_naming_a_hidden_field_is_refused_with_no_such_column(
    org: Org, sf: SalesforceClient
) -> None:
    org.insert("Contact", {"LastName": "Jennings", "AssistantPhone": "+14155550100"})
    org.hide_field("Contact", "AssistantPhone")
    with pytest.raises(RemoteRejected) as caught:
        sf.query("SELECT Id, AssistantPhone FROM Contact")
    error = refusal(caught)
    assert error["errorCode"] == "INVALID_FIELD"
    assert error["message"].endswith(NO_SUCH_COLUMN)
    with pytest.raises(RemoteRejected) as caught:
        sf.query("SELECT Id FROM Contact WHERE AssistantPhone != null")
    assert refusal(caught)["message"].endswith(NO_SUCH_COLUMN)
    # A whole-record read leaves it out; the administrator (the test) still sees the value.
    record = sf.get("Contact", org.records("Contact")[0]["Id"])
    assert "AssistantPhone" not in record
    assert org.records("Contact")[0]["AssistantPhone"] == "+14155550100"


def test_a_parent_field_hidden_on_its_own_object_is_refused_in_a_path(
    org: Org, sf: SalesforceClient
) -> None:
    org.hide_field("Account", "Phone")
    with pytest.raises(RemoteRejected) as caught:
        sf.query("SELECT Id, Account.Phone FROM Contact")
    assert "No such column 'Phone' on entity 'Account'" in refusal(caught)["message"]


def test_sosl_returning_a_hidden_field_is_refused(org: Org, sf: SalesforceClient) -> None:
    org.hide_field("Contact", "AssistantPhone")
    with pytest.raises(RemoteRejected) as caught:
        sf.search_phone("+14155550100", {"Contact": ["Id", "AssistantPhone"]})
    error = refusal(caught)
    assert error["errorCode"] == "INVALID_FIELD"
    assert error["message"].endswith(NO_SUCH_COLUMN)


def test_writes_naming_a_hidden_or_read_only_field_are_refused(
    org: Org, sf: SalesforceClient
) -> None:
    org.hide_field("Contact", "AssistantPhone")
    org.make_read_only("Contact", "HomePhone")
    with pytest.raises(RemoteRejected) as caught:
        sf.create("Contact", {"LastName": "Lee", "AssistantPhone": "+14155550100"})
    assert refusal(caught) == {
        "errorCode": "INVALID_FIELD",
        "message": "No such column 'AssistantPhone' on sobject of type Contact",
    }
    with pytest.raises(RemoteRejected) as caught:
        sf.create("Contact", {"LastName": "Lee", "HomePhone": "+14155550100"})
    error = refusal(caught)
    assert error["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert error["fields"] == ["HomePhone"]
    made = sf.create("Contact", {"LastName": "Lee"})
    with pytest.raises(RemoteRejected) as caught:
        sf.update("Contact", made, {"AssistantPhone": "+14155550100"})
    assert refusal(caught)["errorCode"] == "INVALID_FIELD"
    outcomes = sf.create_many("Contact", [{"LastName": "Ng", "AssistantPhone": "+1415"}])
    assert outcomes[0].error is not None
    assert outcomes[0].error.error_code == "INVALID_FIELD"
    assert [c["LastName"] for c in org.records("Contact")] == ["Lee"]


def test_fields_outside_field_level_security_cannot_be_hidden(org: Org) -> None:
    for sobject, field in (("Contact", "LastName"), ("Task", "CallObject"), ("Contact", "Id")):
        with pytest.raises(ValueError, match="not subject to field-level security"):
            org.hide_field(sobject, field)


def test_duplicate_rules_are_queryable(org: Org, sf: SalesforceClient) -> None:
    org.duplicate_rules[:] = [
        *STANDARD,
        DuplicateRule("Old_Lead_Rule", "Lead", (("Email",),), action="alert", active=False),
    ]
    rows = sf.query(
        "SELECT Id, DeveloperName, SobjectType, IsActive FROM DuplicateRule "
        "WHERE SobjectType IN ('Lead', 'Contact') ORDER BY DeveloperName"
    )
    assert [(r["DeveloperName"], r["SobjectType"], r["IsActive"]) for r in rows] == [
        ("Old_Lead_Rule", "Lead", False),
        ("Standard_Contact_Duplicate_Rule", "Contact", True),
        ("Standard_Lead_Duplicate_Rule", "Lead", True),
    ]
    again = sf.query("SELECT Id FROM DuplicateRule WHERE IsActive = true")
    assert sorted(r["Id"] for r in again) == sorted(r["Id"] for r in rows if r["IsActive"])
    # An inactive rule never refuses.
    org.insert("Lead", {"LastName": "Lee", "Company": "Initech", "Email": "lee@example.com"})
    org.duplicate_rules[:] = [org.duplicate_rules[-1]]
    sf.create("Lead", {"LastName": "Lee", "Company": "Initech", "Email": "lee@example.com"})
    with pytest.raises(RemoteRejected) as caught:
        sf.create("DuplicateRule", {"DeveloperName": "Mine"})
    assert refusal(caught)["errorCode"] == "INVALID_TYPE_FOR_OPERATION"


# -- Callbridge with fields hidden from its integration user -----------------------------------

CALLER = "+14155550100"
OTHER = "+14155550177"


def _task(stack: Stack, call_id: int) -> dict | None:
    return next((t for t in stack.org.records("Task") if t["CallObject"] == str(call_id)), None)


def test_with_assistant_phone_hidden_t02_and_call_logging_still_work(
    stack_with: StackWith, org: Org, company: Company, engine: Engine
) -> None:
    org.hide_field("Contact", "AssistantPhone")
    contact = org.insert(
        "Contact", {"FirstName": "Ada", "LastName": "Lee", "Phone": CALLER, "AssistantPhone": OTHER}
    )
    with stack_with(salesforce_poll_seconds=0.2) as stack:
        (done,) = settled(engine, "aircall_contact", timeout=20)
        assert done.status == "done", done.result
        (made,) = company.list_contacts()
        assert made["information"] == f"salesforce_id:{contact}"
        # Only what the integration user can see reaches Aircall.
        assert [p["value"] for p in made["phone_numbers"]] == [CALLER]
        with Session(engine) as s:
            mark = s.get(PollWatermark, ("T02", "Contact"))
            assert mark is not None
            assert mark.last_error is None

        agent = company.add_user("Jane Agent", AGENT_EMAIL)
        number = company.add_number("Support line", "+1 212 555 0199")
        call_id = answered_inbound_call(company, number["id"], agent["id"], CALLER)
        (logged,) = settled(engine, "log_call", timeout=20)
        assert logged.status == "done", logged.result
        task = wait_for(lambda: _task(stack, call_id), timeout=10)
        assert task["WhoId"] == contact
        assert task["Status"] == "Completed"


def test_a_task_field_the_mapping_writes_hidden_the_call_logs_without_it(
    stack: Stack, org: Org, company: Company, engine: Engine
) -> None:
    org.hide_field("Task", "Description")
    contact = org.insert("Contact", {"LastName": "Jennings", "Phone": CALLER})
    agent = company.add_user("Jane Agent", AGENT_EMAIL)
    number = company.add_number("Support line", "+1 212 555 0199")
    call_id = answered_inbound_call(company, number["id"], agent["id"], CALLER)
    company.tag(call_id, "Follow Up", user_id=agent["id"])  # a later update of the Task
    wait_for(lambda: (_task(stack, call_id) or {}).get("CallDisposition") == "Follow Up")
    logged = settled(engine, "log_call", timeout=20)
    assert [job.status for job in logged] == ["done"] * len(logged)
    task = _task(stack, call_id)
    assert task is not None
    assert (task["WhoId"], task["Status"], task["Description"]) == (contact, "Completed", None)
    assert task["Subject"] == "Inbound call from Jennings"
    assert len(org.records("Task")) == 1
    # Health names it, and what it is used for.
    lines = checked(stack.settings, engine)
    (named,) = [line for line in lines if line.name == "Task.Description"]
    assert named.problem is not None
    assert "the call's Task (Task mapping)" in named.problem
    assert "Object Manager → Task → Fields & Relationships → Description" in named.problem
