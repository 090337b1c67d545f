"""The Salesforce emulator over real HTTPS, driven the way production drives Salesforce.

Tokens come from httpx against ``/services/oauth2/token``; data calls go through simple-salesforce
in direct-session mode on a ``requests.Session`` that trusts the emulator's CA.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import jwt
import pytest
import requests
import simple_salesforce
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql
from starlette.applications import Starlette

from integrations.loopback import serve, wait_for
from integrations.salesforce.emulator import ApiError, Fault, Org, create_app, make_tls
from integrations.salesforce.ids import is_id, new_id, normalize, to18
from integrations.salesforce.links import record_link

DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000")
SESSION_INVALID = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def _rsa_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


PRIVATE_PEM, PUBLIC_PEM = _rsa_pair()
OTHER_PRIVATE_PEM, _ = _rsa_pair()


@dataclass
class Emulator:
    url: str
    ca: str  # CA file for requests sessions
    tls: ssl.SSLContext  # the same CA for httpx (a path for verify= is deprecated in httpx 0.28)
    app: Starlette
    sessions: list[requests.Session] = field(default_factory=list)

    def use(self, org: Org) -> Org:
        self.app.state.org = org
        return org

    def token(self, org: Org, **form: str) -> dict:
        data = {
            "grant_type": "client_credentials",
            "client_id": org.client_id,
            "client_secret": org.client_secret,
        }
        data.update(form)
        response = httpx.post(f"{self.url}/services/oauth2/token", data=data, verify=self.tls)
        assert response.status_code == 200, response.text
        return response.json()

    def salesforce(self, org: Org) -> simple_salesforce.Salesforce:
        tok = self.token(org)
        session = requests.Session()
        session.verify = self.ca
        self.sessions.append(session)  # closed after each test so shutdown need not wait on them
        return simple_salesforce.Salesforce(
            instance_url=tok["instance_url"],
            session_id=tok["access_token"],
            session=session,
            version="59.0",
        )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with pytest.MonkeyPatch.context() as env:
        # requests lets these variables override Session.verify; keep the emulator's CA in charge.
        env.delenv("REQUESTS_CA_BUNDLE", raising=False)
        env.delenv("CURL_CA_BUNDLE", raising=False)
        ca, cert, key = make_tls(tmp_path_factory.mktemp("tls"))
        app = create_app(Org())
        with serve(app, ssl_certfile=cert, ssl_keyfile=key, url_host="localhost") as srv:
            yield Emulator(srv.url, ca, ssl.create_default_context(cafile=ca), app)


@pytest.fixture(autouse=True)
def _close_sessions(emulator: Emulator) -> Iterator[None]:
    yield
    while emulator.sessions:
        emulator.sessions.pop().close()


@pytest.fixture
def org(emulator: Emulator) -> Org:
    return emulator.use(Org(jwt_public_key_pem=PUBLIC_PEM))


@pytest.fixture
def sf(emulator: Emulator, org: Org) -> simple_salesforce.Salesforce:
    return emulator.salesforce(org)


def raw(sf: simple_salesforce.Salesforce, method: str, path: str, **kwargs) -> requests.Response:
    """A data call outside simple-salesforce, to look at statuses and headers."""
    headers = {"Authorization": f"Bearer {sf.session_id}", **kwargs.pop("headers", {})}
    kwargs.setdefault("timeout", 10)
    return sf.session.request(method, f"https://{sf.sf_instance}{path}", headers=headers, **kwargs)


def error_of(exc: SalesforceError) -> dict:
    return exc.content[0]


# -- ids -------------------------------------------------------------------------------------


def test_ids_carry_the_salesforce_checksum() -> None:
    assert to18("001R00000064wdt") == "001R00000064wdtIAA"
    fresh = new_id("00T")
    assert len(fresh) == 18
    assert fresh.startswith("00T")
    assert is_id(fresh)
    assert normalize(fresh.lower()) == fresh
    assert normalize(fresh[:15]) == fresh
    assert not is_id("001R00000064wdtIAB")


# -- OAuth -----------------------------------------------------------------------------------


def test_client_credentials_token_has_the_contract_fields(emulator: Emulator, org: Org) -> None:
    tok = emulator.token(org)
    assert tok["instance_url"] == emulator.url
    assert tok["token_type"] == "Bearer"
    assert tok["access_token"].startswith(org.org_id[:15] + "!")
    assert tok["id"].endswith(f"/id/{org.org_id}/{org.run_as_user_id}")
    assert isinstance(tok["issued_at"], str)
    assert tok["issued_at"].isdigit()
    assert "refresh_token" not in tok
    assert "expires_in" not in tok


def test_client_credentials_accepts_http_basic_client_auth(emulator: Emulator, org: Org) -> None:
    response = httpx.post(
        f"{emulator.url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(org.client_id, org.client_secret),
        verify=emulator.tls,
    )
    assert response.status_code == 200
    assert response.json()["instance_url"] == emulator.url


@pytest.mark.parametrize(
    ("form", "basic", "expected"),
    [
        (
            {"grant_type": "client_credentials"},
            None,
            {"error": "invalid_client_id", "error_description": "client identifier invalid"},
        ),
        (
            {"grant_type": "client_credentials", "client_id": "nope", "client_secret": "x"},
            None,
            {"error": "invalid_client_id", "error_description": "client identifier invalid"},
        ),
        (
            {
                "grant_type": "client_credentials",
                "client_id": "emulator-client",
                "client_secret": "wrong",
            },
            None,
            {"error": "invalid_client", "error_description": "invalid client credentials"},
        ),
        (
            {"grant_type": "client_credentials"},
            ("emulator-client", "wrong"),
            {"error": "invalid_client", "error_description": "invalid client credentials"},
        ),
        (
            {"grant_type": "password"},
            ("emulator-client", "emulator-secret"),
            {"error": "unsupported_grant_type", "error_description": "grant type not supported"},
        ),
    ],
)
def test_token_request_failures_are_400_oauth_errors(
    emulator: Emulator, org: Org, form: dict, basic: tuple | None, expected: dict
) -> None:
    response = httpx.post(
        f"{emulator.url}/services/oauth2/token", data=form, auth=basic, verify=emulator.tls
    )
    assert response.status_code == 400
    assert response.json() == expected


def _assertion(org: Org, *, key: bytes = PRIVATE_PEM, **claims: object) -> str:
    body = {
        "iss": org.client_id,
        "sub": org.jwt_username,
        "aud": "https://login.salesforce.com",
        "exp": str(int(time.time()) + 180),  # simple-salesforce sends a numeric string
    }
    body.update(claims)
    return jwt.encode(body, key, algorithm="RS256")


def _jwt_token(emulator: Emulator, assertion: str) -> httpx.Response:
    return httpx.post(
        f"{emulator.url}/services/oauth2/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        verify=emulator.tls,
    )


def test_jwt_bearer_token_opens_a_session(emulator: Emulator, org: Org) -> None:
    response = _jwt_token(emulator, _assertion(org))
    assert response.status_code == 200
    tok = response.json()
    assert "refresh_token" not in tok
    session = requests.Session()
    session.verify = emulator.ca
    emulator.sessions.append(session)
    sf = simple_salesforce.Salesforce(
        instance_url=tok["instance_url"], session_id=tok["access_token"], session=session
    )
    assert sf.query("SELECT Id FROM Organization")["records"][0]["Id"] == org.org_id


def test_jwt_bearer_accepts_numeric_exp_and_own_audience(emulator: Emulator, org: Org) -> None:
    assertion = _assertion(org, exp=int(time.time()) + 60, aud=emulator.url)
    assert _jwt_token(emulator, assertion).status_code == 200


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"exp": -10}, "invalid_grant"),  # exp as seconds from now
        ({"exp": 3600}, "invalid_grant"),
        ({"aud": "https://evil.example.com"}, "invalid_grant"),
        ({"sub": "someone@else.example.com"}, "invalid_grant"),
        ({"iss": "another-app"}, "invalid_client_id"),
        ({"key": OTHER_PRIVATE_PEM}, "invalid_grant"),
    ],
)
def test_jwt_bearer_rejects_bad_assertions(
    emulator: Emulator, org: Org, claims: dict, error: str
) -> None:
    claims = dict(claims)
    if "exp" in claims:
        claims["exp"] = str(int(time.time()) + claims["exp"])
    response = _jwt_token(emulator, _assertion(org, **claims))
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert set(response.json()) == {"error", "error_description"}


# -- sessions, limits, paths ----------------------------------------------------------------


def test_data_calls_without_a_live_token_get_the_exact_401(
    emulator: Emulator, org: Org, sf: simple_salesforce.Salesforce
) -> None:
    url = f"{emulator.url}/services/data/v59.0/limits/"
    for headers in ({}, {"Authorization": "Bearer 00Dbogus!token"}):
        response = httpx.get(url, headers=headers, verify=emulator.tls)
        assert response.status_code == 401
        assert response.json() == SESSION_INVALID
    org.revoke_tokens()
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.query("SELECT Id FROM Lead")
    assert caught.value.content == SESSION_INVALID


def test_idle_sessions_expire(emulator: Emulator) -> None:
    org = emulator.use(Org(session_idle_seconds=0.0))
    sf = emulator.salesforce(org)
    wait_for(lambda: raw(sf, "GET", "/services/data/v59.0/limits/").status_code == 401)


def test_limit_info_header_counts_each_call_and_limits_agree(
    org: Org, sf: simple_salesforce.Salesforce
) -> None:
    first = raw(sf, "GET", "/services/data/v59.0/query/", params={"q": "SELECT Id FROM Lead"})
    second = raw(sf, "GET", "/services/data/v59.0/query", params={"q": "SELECT Id FROM Lead"})
    assert first.headers["Sforce-Limit-Info"] == f"api-usage=1/{org.api_max}"
    assert second.headers["Sforce-Limit-Info"] == f"api-usage=2/{org.api_max}"
    assert first.history == []
    assert second.status_code == 200
    limits = raw(sf, "GET", "/services/data/v59.0/limits/")
    assert limits.json()["DailyApiRequests"] == {"Max": org.api_max, "Remaining": org.api_max - 3}
    assert limits.headers["Sforce-Limit-Info"] == f"api-usage=3/{org.api_max}"


def test_exhausted_allocation_is_403_request_limit_exceeded(emulator: Emulator) -> None:
    org = emulator.use(Org(api_max=2))
    sf = emulator.salesforce(org)
    sf.query("SELECT Id FROM Lead")
    sf.query("SELECT Id FROM Lead")
    response = raw(sf, "GET", "/services/data/v59.0/query/", params={"q": "SELECT Id FROM Lead"})
    assert response.status_code == 403
    assert response.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert "Retry-After" not in response.headers
    assert response.headers["Sforce-Limit-Info"] == "api-usage=2/2"
    assert org.api_used == 2


def test_versions_root_paths_and_unknown_resources(
    emulator: Emulator, org: Org, sf: simple_salesforce.Salesforce
) -> None:
    root = httpx.get(f"{emulator.url}/services/data/", verify=emulator.tls)
    assert root.status_code == 200
    assert "Sforce-Limit-Info" not in root.headers
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in root.json()
    assert raw(sf, "GET", "/services/data/v58.0/limits").status_code == 200
    unknown_version = raw(sf, "GET", "/services/data/v99.0/limits/")
    assert unknown_version.status_code == 404
    assert unknown_version.json()[0]["errorCode"] == "NOT_FOUND"
    bogus = raw(sf, "GET", "/services/data/v59.0/sobjects/Bogus/describe/")
    assert bogus.status_code == 404
    assert bogus.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    patch = raw(sf, "PATCH", "/services/data/v59.0/sobjects/Task/", json={})
    assert patch.status_code == 405
    assert patch.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"


# -- records ---------------------------------------------------------------------------------


def test_create_get_update_delete_round_trip(org: Org, sf: simple_salesforce.Salesforce) -> None:
    created = sf.Lead.create({"LastName": "Lee", "Company": "ACME", "Phone": "+14155550100"})
    assert created["success"] is True
    assert created["errors"] == []
    lead_id = created["id"]
    assert lead_id.startswith("00Q")
    assert is_id(lead_id)
    got = sf.Lead.get(lead_id)
    assert got["attributes"] == {
        "type": "Lead",
        "url": f"/services/data/v59.0/sobjects/Lead/{lead_id}",
    }
    assert got["Status"] == "Open - Not Contacted"
    assert got["OwnerId"] == org.run_as_user_id
    assert got["Email"] is None
    assert got["IsDeleted"] is False
    assert DATETIME.fullmatch(got["CreatedDate"])
    assert DATETIME.fullmatch(got["SystemModstamp"])
    assert sf.Lead.get(lead_id[:15])["Id"] == lead_id
    assert sf.Lead.get(lead_id, params={"fields": "Id,Phone"}) == {
        "attributes": got["attributes"],
        "Id": lead_id,
        "Phone": "+14155550100",
    }

    assert sf.Lead.update(lead_id, {"Status": "Working - Contacted", "Phone": None}) == 204
    assert org.get("Lead", lead_id)["Status"] == "Working - Contacted"
    assert org.get("Lead", lead_id)["Phone"] is None

    assert sf.Lead.delete(lead_id) == 204
    assert org.get("Lead", lead_id) is None
    for call in (lambda: sf.Lead.get(lead_id), lambda: sf.Lead.delete(lead_id)):
        with pytest.raises(SalesforceResourceNotFound) as caught:
            call()
        assert caught.value.content == [
            {"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}
        ]


def test_unknown_ids_and_non_ids(sf: simple_salesforce.Salesforce) -> None:
    missing = new_id("00Q")
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.get(missing)
    assert error_of(caught.value)["errorCode"] == "NOT_FOUND"
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.get("abc")
    assert error_of(caught.value)["message"] == (
        "Provided external ID field does not exist or is not accessible: abc"
    )
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.update(missing, {"LastName": "x"})
    assert error_of(caught.value)["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_defaults_and_computed_fields(org: Org, sf: simple_salesforce.Salesforce) -> None:
    account_id = sf.Account.create({"Name": "ACME"})["id"]
    contact_id = sf.Contact.create(
        {"FirstName": "Gary", "LastName": "Jennings", "AccountId": account_id}
    )["id"]
    task_id = sf.Task.create(
        {
            "Subject": "Outbound call",
            "WhoId": contact_id,
            "Status": "Completed",
            "TaskSubtype": "Call",
            "CallType": "Outbound",
            "CallDurationInSeconds": 17,
            "ActivityDate": "2024-03-01",
        }
    )["id"]
    task = org.get("Task", task_id)
    assert task["Priority"] == "Normal"
    assert task["IsClosed"] is True
    assert task["AccountId"] == account_id
    assert task["OwnerId"] == org.run_as_user_id
    assert org.get("Contact", contact_id)["Name"] == "Gary Jennings"
    open_task = org.get("Task", sf.Task.create({"Subject": "Later"})["id"])
    assert open_task["Status"] == "Not Started"
    assert open_task["IsClosed"] is False
    event = org.get(
        "Event",
        sf.Event.create(
            {"Subject": "Demo", "StartDateTime": "2024-03-01T10:00:00Z", "DurationInMinutes": 30}
        )["id"],
    )
    assert event["EndDateTime"] == "2024-03-01T10:30:00.000+0000"
    assert event["ActivityDateTime"] == "2024-03-01T10:00:00.000+0000"


def _seed_people(org: Org) -> dict[str, str]:
    account = org.insert("Account", {"Name": "ACME"})
    return {
        "account": account,
        "contact": org.insert("Contact", {"LastName": "Jennings", "AccountId": account}),
        "lead": org.insert("Lead", {"LastName": "Lee", "Company": "ACME"}),
        "inactive": org.add_user("Gone Person", "gone@example.com", active=False),
    }


@pytest.mark.parametrize(
    ("sobject", "body", "code", "fields"),
    [
        ("Lead", {}, "REQUIRED_FIELD_MISSING", ["LastName", "Company"]),
        ("Contact", {"FirstName": "Pat"}, "REQUIRED_FIELD_MISSING", ["LastName"]),
        ("Account", {"Phone": "1"}, "REQUIRED_FIELD_MISSING", ["Name"]),
        ("Opportunity", {}, "REQUIRED_FIELD_MISSING", ["Name", "StageName", "CloseDate"]),
        (
            "Event",
            {"Subject": "x"},
            "REQUIRED_FIELD_MISSING",
            ["ActivityDateTime", "DurationInMinutes"],
        ),
        ("Lead", {"LastName": "x", "Company": "y", "Foo": 1}, "INVALID_FIELD", None),
        ("Task", {"Id": "00T000000000001AAA"}, "INVALID_FIELD", None),
        ("Task", {"IsClosed": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsClosed"]),
        ("Task", {"Subject": "x" * 256}, "STRING_TOO_LONG", ["Subject"]),
        ("Task", {"Status": "Done"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Status"]),
        (
            "Task",
            {"CallType": "outbound"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ["CallType"],
        ),
        (
            "Opportunity",
            {"Name": "x", "StageName": "Won", "CloseDate": "2024-03-01"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ["StageName"],
        ),
        ("Task", {"CallDurationInSeconds": "17"}, "JSON_PARSER_ERROR", None),
        ("Task", {"ActivityDate": "2024-13-01"}, "JSON_PARSER_ERROR", None),
        ("Task", {"ReminderDateTime": "2024-03-01T10:00:00"}, "JSON_PARSER_ERROR", None),
        ("Task", {"WhoId": "{account}"}, "FIELD_INTEGRITY_EXCEPTION", ["WhoId"]),
        ("Task", {"WhatId": "{contact}"}, "FIELD_INTEGRITY_EXCEPTION", ["WhatId"]),
        ("Task", {"WhatId": "invalid"}, "MALFORMED_ID", ["WhatId"]),
        ("Task", {"WhoId": "{missing_contact}"}, "INVALID_CROSS_REFERENCE_KEY", ["WhoId"]),
        (
            "Task",
            {"WhoId": "{lead}", "WhatId": "{account}"},
            "FIELD_INTEGRITY_EXCEPTION",
            ["WhoId", "WhatId"],
        ),
        ("Task", {"OwnerId": "{inactive}"}, "INACTIVE_OWNER_OR_USER", None),
        ("Task", {"OwnerId": "{account}"}, "FIELD_INTEGRITY_EXCEPTION", ["OwnerId"]),
        (
            "Lead",
            {"LastName": "x", "Company": "y", "Email": "not-an-email"},
            "INVALID_EMAIL_ADDRESS",
            ["Email"],
        ),
        ("User", {"LastName": "x"}, "INVALID_TYPE_FOR_OPERATION", None),
    ],
)
def test_invalid_writes_are_refused_like_salesforce(
    org: Org,
    sf: simple_salesforce.Salesforce,
    sobject: str,
    body: dict,
    code: str,
    fields: list[str] | None,
) -> None:
    ids = _seed_people(org) | {"missing_contact": new_id("003")}
    body = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
    before = len(org.records(sobject))
    with pytest.raises(SalesforceMalformedRequest) as caught:
        getattr(sf, sobject).create(body)
    assert caught.value.status == 400
    assert error_of(caught.value)["errorCode"] == code
    if fields is not None:
        assert error_of(caught.value)["fields"] == fields
    assert len(org.records(sobject)) == before


def test_exact_error_messages(sf: simple_salesforce.Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "x", "Company": "y", "Foo": 1})
    assert caught.value.content == [
        {"message": "No such column 'Foo' on sobject of type Lead", "errorCode": "INVALID_FIELD"}
    ]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({})
    assert caught.value.content == [
        {
            "message": "Required fields are missing: [LastName, Company]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName", "Company"],
        }
    ]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Task.create({"Status": "Done"})
    assert error_of(caught.value)["message"] == (
        "Status: bad value for restricted picklist field: Done"
    )


def test_task_subtype_is_create_only(org: Org, sf: simple_salesforce.Salesforce) -> None:
    task_id = sf.Task.create({"Subject": "Call", "TaskSubtype": "Call"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Task.update(task_id, {"TaskSubtype": "Task"})
    assert error_of(caught.value)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert org.get("Task", task_id)["TaskSubtype"] == "Call"


def test_restricted_picklists_can_be_relaxed(org: Org, sf: simple_salesforce.Salesforce) -> None:
    org.set_restricted("Task", "Status", False)
    task_id = sf.Task.create({"Subject": "x", "Status": "Done"})["id"]
    assert org.get("Task", task_id)["Status"] == "Done"
    status = next(f for f in sf.Task.describe()["fields"] if f["name"] == "Status")
    assert status["restrictedPicklist"] is False


def test_seeding_validates_like_the_api(org: Org) -> None:
    with pytest.raises(ApiError) as caught:
        org.insert("Lead", {"LastName": "x"})
    assert caught.value.code == "REQUIRED_FIELD_MISSING"


def test_upsert_only_on_external_id_fields(org: Org, sf: simple_salesforce.Salesforce) -> None:
    org.add_field("Task", "Aircall_Call_Id__c", "string", externalId=True, length=64)
    first = sf.Task.upsert("Aircall_Call_Id__c/call-1", {"Subject": "Call"}, raw_response=True)
    assert first.status_code == 201
    assert first.json()["created"] is True
    again = sf.Task.upsert("Aircall_Call_Id__c/call-1", {"Subject": "Call 2"}, raw_response=True)
    assert again.status_code == 200
    assert again.json() == {
        "id": first.json()["id"],
        "success": True,
        "errors": [],
        "created": False,
    }
    assert [t["Subject"] for t in org.records("Task")] == ["Call 2"]

    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Task.upsert("CallObject/x", {"Subject": "x"})
    assert caught.value.content == [
        {
            "message": "Provided external ID field does not exist or is not accessible: CallObject",
            "errorCode": "NOT_FOUND",
        }
    ]
    org.insert("Task", {"Subject": "a", "Aircall_Call_Id__c": "dup"})
    org.insert("Task", {"Subject": "b", "Aircall_Call_Id__c": "dup"})
    with pytest.raises(SalesforceMoreThanOneRecord) as caught:
        sf.Task.upsert("Aircall_Call_Id__c/dup", {"Subject": "x"})
    assert len(caught.value.content) == 2


def test_describe_reports_fields_and_fresh_org_picklists(sf: simple_salesforce.Salesforce) -> None:
    task = sf.Task.describe()
    assert task["name"] == "Task"
    assert task["keyPrefix"] == "00T"
    fields = {f["name"]: f for f in task["fields"]}
    for key in (
        "name",
        "label",
        "type",
        "length",
        "createable",
        "updateable",
        "nillable",
        "defaultedOnCreate",
        "defaultValue",
        "externalId",
        "idLookup",
        "filterable",
        "custom",
        "referenceTo",
        "relationshipName",
        "picklistValues",
        "restrictedPicklist",
        "soapType",
    ):
        assert key in fields["Subject"]
    status = fields["Status"]
    assert [v["value"] for v in status["picklistValues"]] == [
        "Not Started",
        "In Progress",
        "Completed",
        "Waiting on someone else",
        "Deferred",
    ]
    assert [v["value"] for v in status["picklistValues"] if v["defaultValue"]] == ["Not Started"]
    assert status["restrictedPicklist"] is True
    assert status["defaultedOnCreate"] is True
    assert fields["WhoId"]["referenceTo"] == ["Contact", "Lead"]
    assert fields["WhoId"]["relationshipName"] == "Who"
    assert fields["TaskSubtype"]["updateable"] is False
    lead = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    required = [
        name
        for name, f in lead.items()
        if f["createable"] and not f["nillable"] and not f["defaultedOnCreate"]
    ]
    assert sorted(required) == ["Company", "LastName"]
    everything = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert everything["Lead"]["keyPrefix"] == "00Q"
    assert {"Account", "Contact", "Opportunity", "Event", "User", "Organization"} <= set(everything)


def test_get_updated_and_get_deleted(org: Org, sf: simple_salesforce.Salesforce) -> None:
    kept = sf.Lead.create({"LastName": "Kept", "Company": "x"})["id"]
    gone = sf.Lead.create({"LastName": "Gone", "Company": "x"})["id"]
    sf.Lead.delete(gone)
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(minutes=2)
    # Stamps are whole seconds and coverage stops at the current second: wait for it to pass.
    updated = wait_for(lambda: (r := sf.Lead.updated(start, end))["ids"] and r)
    assert updated["ids"] == [kept]
    assert DATETIME.fullmatch(updated["latestDateCovered"])
    deleted = sf.Lead.deleted(start, end)
    assert [r["id"] for r in deleted["deletedRecords"]] == [gone]
    for bad_start, bad_end in (
        (now, now - dt.timedelta(hours=1)),
        (now - dt.timedelta(days=31), now),
    ):
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.Lead.updated(bad_start, bad_end)
        assert error_of(caught.value)["errorCode"] == "INVALID_REPLICATION_DATE"


# -- SOQL ------------------------------------------------------------------------------------


def _seed_leads(org: Org) -> dict[str, str]:
    rows = [
        ("Ann", "Able", "ACME", "Web", "+14155550100"),
        ("Bob", "Baker", "Initech", "Other", None),
        ("Cid", "Carter", "ACME", None, "+14155550101"),
        ("Dee", "Dunn", "Globex", "Web", "+14155550102"),
        ("Eve", "O'Neil", "ACME", "Phone Inquiry", None),
    ]
    return {
        last: org.insert(
            "Lead",
            {"FirstName": f, "LastName": last, "Company": c, "LeadSource": s, "Phone": p},
        )
        for f, last, c, s, p in rows
    }


def _names(result: dict) -> list[str]:
    return [r["LastName"] for r in result["records"]]


def test_soql_filters_and_ordering(org: Org, sf: simple_salesforce.Salesforce) -> None:
    _seed_leads(org)
    q = "SELECT LastName FROM Lead WHERE "
    assert _names(sf.query(q + "Company = 'acme' ORDER BY LastName")) == [
        "Able",
        "Carter",
        "O'Neil",
    ]
    assert _names(sf.query(q + "Company != 'ACME' ORDER BY LastName DESC")) == ["Dunn", "Baker"]
    assert _names(sf.query(q + "LeadSource IN ('Web', 'Other') ORDER BY LastName")) == [
        "Able",
        "Baker",
        "Dunn",
    ]
    assert _names(sf.query(q + "LeadSource NOT IN ('Web') ORDER BY LastName")) == [
        "Baker",
        "Carter",
        "O'Neil",
    ]
    assert _names(sf.query(q + "Phone LIKE '%0101'")) == ["Carter"]
    assert _names(sf.query(q + "LastName = 'O\\'Neil'")) == ["O'Neil"]
    assert _names(
        sf.query(
            q + "(Company = 'ACME' AND LeadSource = null) OR LastName = 'Baker' ORDER BY LastName"
        )
    ) == ["Baker", "Carter"]
    assert _names(
        sf.query("SELECT LastName FROM Lead ORDER BY LeadSource DESC NULLS LAST, LastName LIMIT 3")
    ) == ["Able", "Dunn", "O'Neil"]
    assert _names(
        sf.query(
            "SELECT LastName FROM Lead ORDER BY LeadSource NULLS FIRST, LastName LIMIT 2 OFFSET 1"
        )
    ) == ["Baker", "O'Neil"]
    assert sf.query("SELECT COUNT() FROM Lead WHERE Company = 'ACME'") == {
        "totalSize": 3,
        "done": True,
        "records": [],
    }


def test_soql_parent_relationships(org: Org, sf: simple_salesforce.Salesforce) -> None:
    account = org.insert("Account", {"Name": "ACME"})
    contact = org.insert("Contact", {"LastName": "Jennings", "AccountId": account})
    org.insert("Task", {"Subject": "Call", "WhoId": contact})
    row = sf.query("SELECT Id, Who.Name, Who.Type, Owner.Name, Account.Name FROM Task")["records"][
        0
    ]
    assert row["Who"]["Name"] == "Jennings"
    assert row["Who"]["Type"] == "Contact"
    assert row["Owner"]["Name"] == "Integration User"
    assert row["Account"]["Name"] == "ACME"
    found = sf.query("SELECT LastName FROM Contact WHERE Account.Name = 'ACME'")
    assert _names(found) == ["Jennings"]
    lonely = sf.query("SELECT Account.Name FROM Contact WHERE AccountId = null")
    assert lonely["totalSize"] == 0


def test_soql_paging_with_next_records_url(org: Org, sf: simple_salesforce.Salesforce) -> None:
    org.query_batch_size = 3
    for n in range(7):
        org.insert("Task", {"Subject": f"T{n}"})
    first = sf.query("SELECT Subject FROM Task ORDER BY Subject")
    assert first["totalSize"] == 7
    assert first["done"] is False
    assert len(first["records"]) == 3
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert [r["Subject"] for r in second["records"]] == ["T3", "T4", "T5"]
    everything = sf.query_all("SELECT Subject FROM Task")
    assert sorted(r["Subject"] for r in everything["records"]) == [f"T{n}" for n in range(7)]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more("01gKa0000000000-3", identifier_is_url=False)
    assert error_of(caught.value)["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_soql_datetime_literals_are_unquoted(org: Org, sf: simple_salesforce.Salesforce) -> None:
    _seed_leads(org)
    since = "2000-01-01T00:00:00Z"
    assert sf.query(f"SELECT Id FROM Lead WHERE SystemModstamp > {since}")["totalSize"] == 5
    assert (
        sf.query("SELECT Id FROM Lead WHERE CreatedDate > 2999-01-01T00:00:00+01:00")["totalSize"]
        == 0
    )
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(f"SELECT Id FROM Lead WHERE CreatedDate > '{since}'")
    assert error_of(caught.value)["errorCode"] == "INVALID_FIELD"
    assert error_of(caught.value)["message"].endswith(
        "value of filter criterion for field 'CreatedDate' must be of type dateTime and should "
        "not be enclosed in quotes"
    )


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("DELETE FROM Lead", "MALFORMED_QUERY"),
        ("UPDATE Lead SET LastName = 'x'", "MALFORMED_QUERY"),
        ("SELECT Id FRM Lead", "MALFORMED_QUERY"),
        (
            "SELECT Id FROM Lead WHERE LastName = 'a' AND Company = 'b' OR Phone = 'c'",
            "MALFORMED_QUERY",
        ),
        ("SELECT Id FROM Lead WHERE LastName INCLUDES ('a')", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead GROUP BY Company", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE CreatedDate > LAST_N_DAYS:7", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE LastName = 'unterminated", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE LastName = 'bad \\q escape'", "MALFORMED_QUERY"),
        ("SELECT Bogus FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Lead WHERE IsConverted = 'false'", "INVALID_FIELD"),
        ("SELECT Id FROM Lead WHERE LastName = 5", "INVALID_FIELD"),
        ("SELECT Id FROM Bogus", "INVALID_TYPE"),
        ("SELECT Id FROM Lead WHERE Id = 'not-an-id'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
def test_soql_refuses_what_it_does_not_understand(
    sf: simple_salesforce.Salesforce, soql: str, code: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert error_of(caught.value)["errorCode"] == code


def test_malformed_query_message_points_at_the_token(sf: simple_salesforce.Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FRM Lead")
    assert error_of(caught.value)["message"] == (
        "SELECT Id FRM Lead\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FRM'"
    )


def test_query_all_returns_deleted_rows(org: Org, sf: simple_salesforce.Salesforce) -> None:
    lead = org.insert("Lead", {"LastName": "Gone", "Company": "x"})
    sf.Lead.delete(lead)
    assert sf.query("SELECT Id FROM Lead")["totalSize"] == 0
    deleted = sf.query_all("SELECT Id, IsDeleted FROM Lead", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in deleted["records"]] == [(lead, True)]


def test_soql_string_literal_round_trip(emulator: Emulator) -> None:
    """Any Subject, escaped as simple-salesforce's format_soql does, finds exactly its record."""
    org = emulator.use(Org())
    sf = emulator.salesforce(org)
    markers = iter(range(10**6))

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(subject=st.text(min_size=1, max_size=60))
    def round_trip(subject: str) -> None:
        marker = f"m{next(markers)}"
        wanted = org.insert("Task", {"Subject": subject, "CallObject": marker})
        org.insert("Task", {"Subject": subject + "x", "CallObject": marker})
        result = sf.query(
            format_soql(
                "SELECT Id, Subject FROM Task WHERE Subject = {} AND CallObject = {}",
                subject,
                marker,
            )
        )
        assert [(r["Id"], r["Subject"]) for r in result["records"]] == [(wanted, subject)]

    round_trip()


def test_arbitrary_query_text_is_answered_never_crashes(emulator: Emulator) -> None:
    """Hostile SOQL and SOSL get a 200 or a 400 error array, never a 5xx."""
    org = emulator.use(Org())
    org.insert("Contact", {"LastName": "Jennings", "Phone": "+14155550100"})
    sf = emulator.salesforce(org)
    fragments = st.sampled_from(
        ["SELECT", "Id", "Name", ",", "FROM", "Contact", "WHERE", "=", "'x'", "(", ")", "AND",
         "OR", "NOT", "IN", "LIKE", "ORDER BY", "LIMIT", "5", "null", "Owner.Name", "FIND",
         "{", "}", "\\+", "RETURNING", "2024-03-01T00:00:00Z", "'", "COUNT()", "Phone"]
    )  # fmt: skip
    text = st.one_of(st.text(max_size=40), st.lists(fragments, max_size=12).map(" ".join))

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=text, resource=st.sampled_from(["query", "search"]))
    def answered(text: str, resource: str) -> None:
        response = raw(sf, "GET", f"/services/data/v59.0/{resource}/", params={"q": text})
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            assert set(response.json()[0]) >= {"errorCode", "message"}

    answered()


# -- SOSL ------------------------------------------------------------------------------------


def test_sosl_finds_phone_numbers_by_digits(org: Org, sf: simple_salesforce.Salesforce) -> None:
    contact = org.insert("Contact", {"LastName": "Jennings", "Phone": "+1 (415) 555-0100"})
    lead = org.insert("Lead", {"LastName": "Lee", "Company": "ACME", "MobilePhone": "4155550100"})
    org.insert("Lead", {"LastName": "Other", "Company": "ACME", "Phone": "+14155550199"})
    found = sf.search(
        "FIND {\\+14155550100} IN PHONE FIELDS "
        "RETURNING Contact(Id, Name, AccountId, OwnerId), Lead(Id, Name, Company, IsConverted)"
    )
    records = found["searchRecords"]
    assert [(r["attributes"]["type"], r["Id"]) for r in records] == [
        ("Contact", contact),
        ("Lead", lead),
    ]
    assert records[1] == {
        "attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{lead}"},
        "Id": lead,
        "Name": "Lee",
        "Company": "ACME",
        "IsConverted": False,
    }
    narrowed = sf.search(
        "FIND {4155550100} IN PHONE FIELDS RETURNING Lead(Id WHERE Company = 'nobody'), Contact"
    )
    assert [r["Id"] for r in narrowed["searchRecords"]] == [contact]


def test_sosl_searches_custom_phone_fields_and_names(
    org: Org, sf: simple_salesforce.Salesforce
) -> None:
    org.add_field("Contact", "Aircall_Phone__c", "phone")
    contact = org.insert(
        "Contact", {"LastName": "Jennings", "Aircall_Phone__c": "+33 1 23 45 67 89"}
    )
    found = sf.search("FIND {\\+33123456789} IN PHONE FIELDS RETURNING Contact(Id)")
    assert [r["Id"] for r in found["searchRecords"]] == [contact]
    by_name = sf.search("FIND {jenn*} IN NAME FIELDS RETURNING Contact(Id, Name)")
    assert [r["Name"] for r in by_name["searchRecords"]] == ["Jennings"]


@pytest.mark.parametrize(
    ("sosl", "message"),
    [
        (
            "FIND +14155550100 IN PHONE FIELDS RETURNING Contact(Id)",
            "No search term found. The search term must be enclosed in braces.",
        ),
        ("FIND {+14155550100} IN PHONE FIELDS RETURNING Contact(Id)", None),
        ("FIND {(415) 555-0100} IN PHONE FIELDS RETURNING Contact(Id)", None),
        ("FIND {4155550100} IN PHONE FIELDS RETURNING Contact(Id) WHERE", None),
        ("FIND {a} RETURNING Contact(Id)", None),
        ("FIND {4155550100 OR} IN PHONE FIELDS RETURNING Contact(Id)", None),
        ("FIND {OR 4155550100} IN PHONE FIELDS RETURNING Contact(Id)", None),
        ("FIND {4155550100 OR OR 4155550101} IN PHONE FIELDS RETURNING Contact(Id)", None),
        ("FIND {415 555 0100 OR 4155550101} IN PHONE FIELDS RETURNING Contact(Id)", None),
        ("FIND {4155550100 OR 5} IN PHONE FIELDS RETURNING Contact(Id)", None),
        ("FIND {jennings AND lee} RETURNING Contact(Id)", None),
        ("FIND {jennings AND NOT lee} RETURNING Contact(Id)", None),
    ],
)
def test_sosl_syntax_errors_are_malformed_search(
    sf: simple_salesforce.Salesforce, sosl: str, message: str | None
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.search(sosl)
    assert error_of(caught.value)["errorCode"] == "MALFORMED_SEARCH"
    if message:
        assert error_of(caught.value)["message"] == message


def test_sosl_or_finds_the_records_of_either_word(
    org: Org, sf: simple_salesforce.Salesforce
) -> None:
    first = org.insert("Contact", {"LastName": "Jennings", "Phone": "+1 (415) 555-0100"})
    second = org.insert("Contact", {"LastName": "Lee", "MobilePhone": "212 555 0199"})
    org.insert("Contact", {"LastName": "Other", "Phone": "+1 415 555 0142"})
    lead = org.insert("Lead", {"LastName": "Pat", "Company": "ACME", "Phone": "4155550100"})

    def found(term: str) -> list[str]:
        sosl = f"FIND {{{term}}} IN PHONE FIELDS RETURNING Contact(Id), Lead(Id LIMIT 5)"
        return [r["Id"] for r in sf.search(sosl)["searchRecords"]]

    assert found("14155550100 OR 12125550199") == [first, second, lead]
    assert found("14155550100 or 12125550199") == [first, second, lead]  # any case, as SOSL
    assert found("415555010* OR 212555019*") == [second, lead]  # digits that start so
    # Past 4,000 characters Salesforce drops the operators: the words no longer stand apart.
    padded = " OR ".join(["14155550100", *["12125550199"] * 300])
    assert len(padded) > 4000
    assert found(padded) == []
    assert found(" OR ".join(["14155550100"] * 700)) == []  # past 10,000: no rows


def test_sosl_returns_parent_fields_as_soql_does(
    org: Org, sf: simple_salesforce.Salesforce
) -> None:
    owner = org.add_user("Olivia Owner", "olivia@example.com")
    account = org.insert("Account", {"Name": "Acme Corp"})
    with_account = org.insert(
        "Contact",
        {"LastName": "Jennings", "Phone": "4155550100", "AccountId": account, "OwnerId": owner},
    )
    alone = org.insert("Contact", {"LastName": "Alone", "MobilePhone": "+1 415 555 0100"})
    lead = org.insert("Lead", {"LastName": "Lee", "Company": "Initech", "Phone": "4155550100"})
    found = sf.search(
        "FIND {4155550100} IN PHONE FIELDS RETURNING "
        "Contact(Id, Owner.Name, AccountId, Account.Name ORDER BY LastName), "
        "Lead(Id, Owner.Name, Status)"
    )["searchRecords"]
    by_id = {r["Id"]: r for r in found}
    assert [r["Id"] for r in found] == [alone, with_account, lead]
    assert by_id[with_account]["Owner"] == {
        "attributes": {"type": "User", "url": f"/services/data/v59.0/sobjects/User/{owner}"},
        "Name": "Olivia Owner",
    }
    assert by_id[with_account]["Account"]["Name"] == "Acme Corp"
    assert by_id[alone]["Account"] is None  # an empty lookup: null, as in SOQL
    assert by_id[alone]["Owner"]["Name"] == "Integration User"
    assert by_id[lead]["Owner"]["Name"] == "Integration User"  # polymorphic: the Name entity
    filtered = sf.search(
        "FIND {4155550100} IN PHONE FIELDS RETURNING Contact(Id WHERE Account.Name = 'Acme Corp')"
    )["searchRecords"]
    assert [r["Id"] for r in filtered] == [with_account]


@pytest.mark.parametrize(
    ("returning", "code"),
    [
        ("Contact(Id, Bogus.Name)", "INVALID_FIELD"),  # no such relationship
        ("Contact(Id, AccountId.Name)", "INVALID_FIELD"),  # the id field, not the relationship
        ("Contact(Id, Account.Bogus)", "INVALID_FIELD"),  # no such field on the parent
        ("Lead(Id, Owner.Department)", "INVALID_FIELD"),  # polymorphic: Name entity fields only
        ("Lead(Id, Account.Name)", "INVALID_FIELD"),  # Leads have no Account
        ("Contact(Id, Name, name)", "MALFORMED_SEARCH"),  # a field twice
        ("Contact(Id, Owner.Name, owner.name)", "MALFORMED_SEARCH"),
        ("Contact(Id), Lead(Id), Contact(Name)", "MALFORMED_SEARCH"),  # an object twice
        ("Contact(Id, WHERE)", "MALFORMED_SEARCH"),
        ("Contact(Id, Account.Owner.Name)", "MALFORMED_SEARCH"),  # deeper than the emulator goes
    ],
)
def test_sosl_field_lists_are_checked_as_soql_checks_them(
    sf: simple_salesforce.Salesforce, returning: str, code: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.search(f"FIND {{4155550100}} IN PHONE FIELDS RETURNING {returning}")
    assert error_of(caught.value)["errorCode"] == code


def test_sosl_index_lags_api_writes(org: Org, sf: simple_salesforce.Salesforce) -> None:
    org.sosl_delay = 0.5
    seeded = org.insert("Lead", {"LastName": "Seeded", "Company": "x", "Phone": "4155550111"})
    created = sf.Lead.create({"LastName": "Fresh", "Company": "x", "Phone": "4155550122"})["id"]
    sosl = "FIND {4155550122} IN PHONE FIELDS RETURNING Lead(Id)"
    assert sf.search(sosl)["searchRecords"] == []
    assert [
        r["Id"] for r in sf.query("SELECT Id FROM Lead WHERE Phone = '4155550122'")["records"]
    ] == [created]
    seeded_hits = sf.search("FIND {4155550111} IN PHONE FIELDS RETURNING Lead(Id)")
    assert [r["Id"] for r in seeded_hits["searchRecords"]] == [seeded]
    wait_for(lambda: sf.search(sosl)["searchRecords"], timeout=5)
    assert [r["Id"] for r in sf.search(sosl)["searchRecords"]] == [created]


# -- composite -------------------------------------------------------------------------------


def test_composite_resolves_references_and_counts_once(
    org: Org, sf: simple_salesforce.Salesforce
) -> None:
    contact = org.insert("Contact", {"LastName": "Jennings", "Phone": "+14155550100"})
    before = org.api_used
    result = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "collateSubrequests": False,
            "compositeRequest": [
                {
                    "method": "GET",
                    "url": "/services/data/v59.0/query/?q=SELECT+Id+FROM+Contact+WHERE+Phone"
                    "+%3D+%27%2B14155550100%27+LIMIT+1",
                    "referenceId": "who",
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Task",
                    "referenceId": "callTask",
                    "body": {"Subject": "Inbound call", "WhoId": "@{who.records[0].Id}"},
                },
                {
                    "method": "PATCH",
                    "url": "/services/data/v59.0/sobjects/Task/@{callTask.id}",
                    "referenceId": "touch",
                    "body": {"CallDisposition": "answered"},
                },
            ],
        },
    )
    assert org.api_used == before + 1
    items = result["compositeResponse"]
    assert [i["httpStatusCode"] for i in items] == [200, 201, 204]
    assert items[2]["body"] is None
    task_id = items[1]["body"]["id"]
    assert items[1]["httpHeaders"] == {"Location": f"/services/data/v59.0/sobjects/Task/{task_id}"}
    task = org.get("Task", task_id)
    assert task["WhoId"] == contact
    assert task["CallDisposition"] == "answered"


def test_composite_all_or_none_rolls_back(org: Org, sf: simple_salesforce.Salesforce) -> None:
    result = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Account/",
                    "referenceId": "acct",
                    "body": {"Name": "ACME"},
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Contact/",
                    "referenceId": "person",
                    "body": {"AccountId": "@{acct.id}"},
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Lead/",
                    "referenceId": "never",
                    "body": {"LastName": "x", "Company": "y"},
                },
            ],
        },
    )
    items = result["compositeResponse"]
    assert [i["httpStatusCode"] for i in items] == [400, 400, 400]
    assert items[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    halted = {
        "errorCode": "PROCESSING_HALTED",
        "message": "The transaction was rolled back since another operation in the same "
        "transaction failed.",
    }
    assert items[0]["body"] == [halted]
    assert items[2]["body"] == [halted]
    assert org.records("Account") == []
    assert org.records("Lead") == []


def test_composite_unresolved_reference(org: Org, sf: simple_salesforce.Salesforce) -> None:
    result = sf.restful(
        "composite",
        method="POST",
        json={
            "compositeRequest": [
                {
                    "method": "GET",
                    "url": "/services/data/v59.0/query/?q=SELECT+Id+FROM+Contact+LIMIT+1",
                    "referenceId": "who",
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Task/",
                    "referenceId": "callTask",
                    "body": {"Subject": "x", "WhoId": "@{who.records[0].Id}"},
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Task/",
                    "referenceId": "other",
                    "body": {"Subject": "independent"},
                },
            ]
        },
    )
    items = result["compositeResponse"]
    assert items[1]["httpStatusCode"] == 400
    assert items[1]["body"] == [
        {
            "errorCode": "PROCESSING_HALTED",
            "message": "Invalid reference specified. No value for who.records[0].Id found in who.",
        }
    ]
    assert items[2]["httpStatusCode"] == 201
    assert [t["Subject"] for t in org.records("Task")] == ["independent"]


def _subrequests(url: str, count: int) -> list[dict]:
    return [{"method": "GET", "url": url, "referenceId": f"r{n}"} for n in range(count)]


@pytest.mark.parametrize(
    "items",
    [
        _subrequests("/services/data/v59.0/limits/", 1),  # not a composite-able resource
        _subrequests("/services/data/v59.0/composite", 1),  # no nesting
        _subrequests("/services/data/v59.0/sobjects/Task/describe", 26),  # over 25
        _subrequests("/services/data/v59.0/query/?q=SELECT+Id+FROM+Task", 6),  # over 5 queries
        [{"method": "get", "url": "/services/data/v59.0/sobjects/Task/", "referenceId": "x"}],
        [{"method": "GET", "url": "/services/data/v59.0/sobjects/Task/", "referenceId": "-x"}],
    ],
)
def test_malformed_composite_envelopes_run_nothing(
    org: Org, sf: simple_salesforce.Salesforce, items: list[dict]
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite", method="POST", json={"compositeRequest": items})
    assert caught.value.status == 400
    assert org.api_used == 1


def test_collections_all_or_none(org: Org, sf: simple_salesforce.Salesforce) -> None:
    records = [
        {"attributes": {"type": "Task"}, "Subject": "ok"},
        {"attributes": {"type": "Task"}, "Status": "Bogus"},
    ]
    result = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": True, "records": records}
    )
    assert result[0]["success"] is False
    assert result[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert result[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert org.records("Task") == []
    partial = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": False, "records": records}
    )
    assert [r["success"] for r in partial] == [True, False]
    assert [t["Subject"] for t in org.records("Task")] == ["ok"]
    update = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "records": [{"attributes": {"type": "Task"}, "Id": partial[0]["id"], "Subject": "new"}]
        },
    )
    assert update == [{"id": partial[0]["id"], "success": True, "errors": []}]
    assert org.get("Task", partial[0]["id"])["Subject"] == "new"


# -- faults ----------------------------------------------------------------------------------


def test_status_fault_answers_without_doing_the_work(
    org: Org, sf: simple_salesforce.Salesforce
) -> None:
    org.faults.add(Fault(method="POST", path=r"/sobjects/Task/?$", status=503, body="Down"))
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.Task.create({"Subject": "x"})
    assert caught.value.status == 503
    assert caught.value.content == "Down"
    assert org.records("Task") == []
    assert org.api_used == 0
    lock = [
        {
            "message": "unable to obtain exclusive access to this record",
            "errorCode": "UNABLE_TO_LOCK_ROW",
            "fields": [],
        }
    ]
    org.faults.add(Fault(path=r"/sobjects/Task", status=400, body=lock, times=2))
    for _ in range(2):
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.Task.create({"Subject": "x"})
        assert caught.value.content == lock
    assert sf.Task.create({"Subject": "x"})["success"] is True
    assert len(org.records("Task")) == 1
    assert org.api_used == 3


def test_drop_fault_breaks_the_connection(org: Org, sf: simple_salesforce.Salesforce) -> None:
    org.faults.add(Fault(method="POST", path=r"/sobjects/Task/?$", kind="drop"))
    with pytest.raises(requests.exceptions.RequestException):
        sf.Task.create({"Subject": "x"})
    assert org.records("Task") == []


def test_after_commit_delay_leaves_an_ambiguous_committed_write(
    org: Org, sf: simple_salesforce.Salesforce
) -> None:
    org.faults.add(
        Fault(method="POST", path=r"/sobjects/Task/?$", kind="after_commit_delay", delay=1.0)
    )
    with pytest.raises(requests.exceptions.Timeout):
        raw(sf, "POST", "/services/data/v59.0/sobjects/Task/", json={"Subject": "x"}, timeout=0.2)
    wait_for(lambda: org.records("Task"))
    assert [t["Subject"] for t in org.records("Task")] == ["x"]


def test_delay_and_expire_session_faults(org: Org, sf: simple_salesforce.Salesforce) -> None:
    org.faults.add(Fault(path=r"/limits", kind="delay", delay=0.3))
    started = time.monotonic()
    assert sf.limits()["DailyApiRequests"]["Max"] == org.api_max
    assert time.monotonic() - started >= 0.3
    org.faults.add(Fault(path=r"/query", kind="expire_session"))
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Lead")


def test_control_api(emulator: Emulator, org: Org, sf: simple_salesforce.Salesforce) -> None:
    base = f"{emulator.url}/__emulator"
    seeded = httpx.post(
        f"{base}/records/Lead", json={"LastName": "Lee", "Company": "ACME"}, verify=emulator.tls
    )
    assert seeded.status_code == 201
    listed = httpx.get(f"{base}/records/Lead", verify=emulator.tls).json()
    assert [r["Id"] for r in listed] == [seeded.json()["id"]]
    refused = httpx.post(f"{base}/records/Lead", json={}, verify=emulator.tls)
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    fault = {
        "path": "/query",
        "status": 500,
        "body": [{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}],
    }
    assert httpx.post(f"{base}/faults", json=fault, verify=emulator.tls).status_code == 201
    assert httpx.delete(f"{base}/faults", verify=emulator.tls).status_code == 204
    assert sf.query("SELECT Id FROM Lead")["totalSize"] == 1
    assert (
        httpx.post(f"{base}/faults", json={"kind": "nope"}, verify=emulator.tls).status_code == 400
    )
    state = httpx.get(f"{base}/state", verify=emulator.tls).json()
    assert state["api_used"] == 1
    assert state["org_id"] == org.org_id
    assert httpx.post(f"{base}/revoke", verify=emulator.tls).status_code == 204
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Lead")


def test_no_429_or_retry_after_on_refusals(emulator: Emulator) -> None:
    org = emulator.use(Org(api_max=1))
    sf = emulator.salesforce(org)
    sf.limits()
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.limits()
    assert caught.value.status == 403
    response = raw(sf, "GET", "/services/data/v59.0/limits/")
    assert response.status_code == 403
    assert "Retry-After" not in response.headers


def test_a_record_link_opens_the_records_page_with_its_values_escaped(
    emulator: Emulator, org: Org
) -> None:
    record_id = org.insert("Lead", {"LastName": "<b>Lee</b>", "Company": "ACME & Co"})
    page = httpx.get(record_link(emulator.url, "Lead", record_id), verify=emulator.tls)
    assert page.status_code == 200
    assert "&lt;b&gt;Lee&lt;/b&gt;" in page.text
    assert "ACME &amp; Co" in page.text
    missing = record_link(emulator.url, "Lead", "00Q000000000000AAA")
    assert httpx.get(missing, verify=emulator.tls).status_code == 404
