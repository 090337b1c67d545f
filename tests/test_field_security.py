"""Field-level security: the emulator refuses hidden fields as Salesforce does, and Callbridge
leaves out what the integration user cannot see or set instead of failing on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.errors import RemoteRejected
from integrations.loopback import Running
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Org
from integrations.salesforce.emulator.duplicates import STANDARD, DuplicateRule
from tests.conftest import make_settings

NO_SUCH_COLUMN = (
    "No such column 'AssistantPhone' on entity 'Contact'. If you are attempting to use a custom "
    "field, be sure to append the '__c' after the custom field name. Please reference your WSDL "
    "or the describe call for the appropriate names."
)


@pytest.fixture
def sf(
    salesforce: Running, aircall: Running, org: Org, sqlite_url: str
) -> Iterator[SalesforceClient]:
    client = SalesforceClient(make_settings(salesforce, aircall, org, sqlite_url))
    yield client
    client.close()


def _refusal(caught: pytest.ExceptionInfo[RemoteRejected]) -> dict:
    assert caught.value.status == 400
    body = caught.value.body
    assert isinstance(body, list)
    return body[0]


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
    error = _refusal(caught)
    assert error["errorCode"] == "INVALID_FIELD"
    assert error["message"].endswith(NO_SUCH_COLUMN)
    with pytest.raises(RemoteRejected) as caught:
        sf.query("SELECT Id FROM Contact WHERE AssistantPhone != null")
    assert _refusal(caught)["message"].endswith(NO_SUCH_COLUMN)
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
    assert "No such column 'Phone' on entity 'Account'" in _refusal(caught)["message"]


def test_sosl_returning_a_hidden_field_is_refused(org: Org, sf: SalesforceClient) -> None:
    org.hide_field("Contact", "AssistantPhone")
    with pytest.raises(RemoteRejected) as caught:
        sf.search_phone("+14155550100", {"Contact": ["Id", "AssistantPhone"]})
    error = _refusal(caught)
    assert error["errorCode"] == "INVALID_FIELD"
    assert error["message"].endswith(NO_SUCH_COLUMN)


def test_writes_naming_a_hidden_or_read_only_field_are_refused(
    org: Org, sf: SalesforceClient
) -> None:
    org.hide_field("Contact", "AssistantPhone")
    org.make_read_only("Contact", "HomePhone")
    with pytest.raises(RemoteRejected) as caught:
        sf.create("Contact", {"LastName": "Lee", "AssistantPhone": "+14155550100"})
    assert _refusal(caught) == {
        "errorCode": "INVALID_FIELD",
        "message": "No such column 'AssistantPhone' on sobject of type Contact",
    }
    with pytest.raises(RemoteRejected) as caught:
        sf.create("Contact", {"LastName": "Lee", "HomePhone": "+14155550100"})
    error = _refusal(caught)
    assert error["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert error["fields"] == ["HomePhone"]
    made = sf.create("Contact", {"LastName": "Lee"})
    with pytest.raises(RemoteRejected) as caught:
        sf.update("Contact", made, {"AssistantPhone": "+14155550100"})
    assert _refusal(caught)["errorCode"] == "INVALID_FIELD"
    outcomes = sf.create_many("Contact", [{"LastName": "Ng", "AssistantPhone": "+1415"}])
    assert outcomes[0].error is not None
    assert outcomes[0].error.error_code == "INVALID_FIELD"
    assert [c["LastName"] for c in org.records("Contact")] == ["Lee"]


def test_fields_outside_field_level_security_cannot_be_hidden(org: Org) -> None:
    for sobject, field in (("Contact", "LastName"), ("Task", "CallObject"), ("Contact", "Id")):
        with pytest.raises(ValueError, match="not subject to field-level security"):
            org.hide_field(sobject, field)


def test_duplicate_rules_are_queryable(org: Org, sf: SalesforceClient) -> None:
    org.duplicate_rules.extend(STANDARD)
    org.duplicate_rules.append(
        DuplicateRule("Old_Lead_Rule", "Lead", (("Email",),), action="alert", active=False)
    )
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
    assert _refusal(caught)["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
