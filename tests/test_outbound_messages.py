"""T05: Salesforce Outbound Messages posted over HTTP, shaped as the contract shows them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from xml.sax.saxutils import escape, quoteattr

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from integrations.loopback import serve
from integrations.salesforce.emulator import Fault
from integrations.salesforce.ids import to18
from integrations.salesforce.outbound import ACK
from integrations.settings import Settings
from integrations.store.salesforce_sync import AircallContactLink, SalesforceDelivery
from integrations.sync.automations import builder, definitions
from tests.conftest import OUTBOUND_TOKEN, Stack
from tests.helpers import jobs, settled

ORG_ID = to18("00D5e000000AbCd")
PATH = "/webhooks/salesforce/outbound-message"
_serial = itertools.count(1)


def notification_id() -> str:
    return to18(f"04l{next(_serial):012d}")


def envelope(org_id: str, *notifications: tuple[str, str, dict[str, str]]) -> bytes:
    """The SOAP body Salesforce posts: (notification id, object, fields with ``Id`` first)."""
    items = "".join(
        f"""
   <Notification>
    <Id>{nid}</Id>
    <sObject xsi:type="sf:{sobject}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">"""
        + "".join(
            f"\n     <sf:{name}>{escape(value)}</sf:{name}>" for name, value in fields.items()
        )
        + """
    </sObject>
   </Notification>"""
        for nid, sobject, fields in notifications
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{escape(org_id)}</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/59.0/{org_id[:15]}</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/59.0/{org_id[:15]}</PartnerUrl>{items}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
""".encode()  # noqa: E501


def lead(record_id: str = "00Q5e00000AbCdE", **fields: str) -> dict[str, str]:
    return {
        "Id": to18(record_id),
        "Company": "ACME & Sons",
        "DoNotCall": "false",
        "LastModifiedDate": "2024-03-01T10:15:30.000Z",
        "LastName": "Lee",
        "Phone": "+14155550100",
        **fields,
    }


def post(url: str, body: bytes, token: str | None = OUTBOUND_TOKEN) -> httpx.Response:
    """Post as Salesforce does, to the URL holding our secret (``token=None``: without it)."""
    return httpx.post(
        url + PATH + (f"/{token}" if token is not None else ""),
        content=body,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        timeout=10,
    )


def deliveries(engine: Engine) -> list[SalesforceDelivery]:
    with Session(engine) as s:
        return list(s.exec(select(SalesforceDelivery).order_by(SalesforceDelivery.id)))


@pytest.fixture
def app_url(engine: Engine, database_url: str) -> Iterator[str]:
    """The app without its worker (nor Salesforce to re-read from): what is stored and queued
    stays visible."""
    from web.app import create_app

    config = Settings(
        _env_file=None,
        database_url=database_url,
        salesforce_org_id=ORG_ID,
        outbound_message_token=SecretStr(OUTBOUND_TOKEN),
        outbound_message_reread=False,
    )
    with serve(create_app(config, engine=engine, worker=False)) as app:
        yield app.url


def test_a_notification_is_stored_and_acked(app_url: str, engine: Engine) -> None:
    nid = notification_id()
    answer = post(app_url, envelope(ORG_ID, (nid, "Lead", lead())))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert answer.content == ACK
    (stored,) = deliveries(engine)
    assert (stored.trigger, stored.notification_id, stored.sobject) == ("T05", nid, "Lead")
    assert stored.record_id == to18("00Q5e00000AbCdE")
    assert stored.record["Company"] == "ACME & Sons"
    assert "Id" not in stored.record
    (job,) = jobs(engine, "aircall_contact")
    assert job.payload["id"] == stored.record_id


def test_a_message_sent_again_is_acked_and_stored_once(app_url: str, engine: Engine) -> None:
    body = envelope(ORG_ID, (notification_id(), "Lead", lead()))
    assert [post(app_url, body).content for _ in range(3)] == [ACK] * 3
    assert len(deliveries(engine)) == 1
    assert len(jobs(engine, "aircall_contact")) == 1


def test_a_batch_stores_only_its_new_notifications(app_url: str, engine: Engine) -> None:
    known = notification_id()
    post(app_url, envelope(ORG_ID, (known, "Lead", lead())))
    batch = envelope(
        ORG_ID,
        (known, "Lead", lead()),
        (notification_id(), "Lead", lead("00Q5e00000AbCdF")),
        (notification_id(), "Foo__c", {"Id": to18("a015e00000AbCdE"), "Name": "x"}),
    )
    assert post(app_url, batch).content == ACK
    assert [d.sobject for d in deliveries(engine)] == ["Lead", "Lead", "Foo__c"]


def test_another_orgs_message_is_refused_and_not_stored(app_url: str, engine: Engine) -> None:
    other = to18("00D5e000000XyZw")
    answer = post(app_url, envelope(other, (notification_id(), "Lead", lead())))
    assert answer.status_code == 403
    assert b"<soapenv:Fault>" in answer.content
    assert b"Ack" not in answer.content
    assert deliveries(engine) == []
    assert jobs(engine) == []


def test_the_15_character_org_id_is_accepted(app_url: str, engine: Engine) -> None:
    answer = post(app_url, envelope(ORG_ID[:15], (notification_id(), "Lead", lead())))
    assert answer.content == ACK
    assert len(deliveries(engine)) == 1


MALFORMED = {
    "truncated": b"<soapenv:Envelope",
    "empty": b"",
    "json": b'{"OrganizationId": "00D5e000000AbCd"}',
    "no notification": envelope(ORG_ID),
    "no record id": envelope(ORG_ID, (notification_id(), "Lead", {"LastName": "Lee"})),
    "bad notification id": envelope(ORG_ID, ("not-an-id", "Lead", lead())),
    "no object type": envelope(ORG_ID, (notification_id(), "Lead", lead())).replace(
        b' xsi:type="sf:Lead"', b""
    ),
}


def test_malformed_messages_get_a_400_fault(app_url: str, engine: Engine) -> None:
    for name, body in MALFORMED.items():
        answer = post(app_url, body)
        assert answer.status_code == 400, name
        assert b"<faultcode>soapenv:Client</faultcode>" in answer.content, name
    assert deliveries(engine) == []


def test_entities_are_refused_not_expanded(app_url: str, engine: Engine) -> None:
    laughs = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10 if n else "lol"}">' for n in range(10))
    bomb = envelope(ORG_ID, (notification_id(), "Lead", lead(LastName="BOMB"))).replace(
        b"<soapenv:Envelope",
        f"<!DOCTYPE soapenv:Envelope [{laughs}]><soapenv:Envelope".encode(),
        1,
    )
    bomb = bomb.replace(b"BOMB", b"&l9;")
    external = envelope(ORG_ID, (notification_id(), "Lead", lead(LastName="EXT"))).replace(
        b"<soapenv:Envelope",
        b'<!DOCTYPE soapenv:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]><soapenv:Envelope',
        1,
    )
    for body in (bomb, external.replace(b"EXT", b"&x;")):
        answer = post(app_url, body)
        assert answer.status_code == 400
        assert b"DTD" in answer.content
    assert deliveries(engine) == []


def test_a_body_over_1_mib_is_refused(app_url: str, engine: Engine) -> None:
    huge = lead(Description="x" * (1024 * 1024))
    answer = post(app_url, envelope(ORG_ID, (notification_id(), "Lead", huge)))
    assert answer.status_code == 413
    assert b"<soapenv:Fault>" in answer.content
    assert deliveries(engine) == []


# -- hostile input ------------------------------------------------------------------------------

xml_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r"), max_size=40
) | st.sampled_from(["]]>", "<![CDATA[x]]>", "&amp;", "\t\n", "&#x0;", "\ufffe"])


def _xml_char(c: str) -> bool:
    """XML 1.0's ``Char`` production."""
    n = ord(c)
    return c in "\t\n\r" or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or 0x10000 <= n <= 0x10FFFF


hostile = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    # well-formed messages from any org but ours, with hostile values
    st.builds(
        lambda org, value: envelope(org, (notification_id(), "Lead", lead(LastName=value))),
        st.text(max_size=20) | st.sampled_from([ORG_ID[:14], ORG_ID + "x", ORG_ID.lower()[:15]]),
        xml_text,
    ),
    # our envelope with a hostile fragment spliced in
    st.builds(
        lambda fragment, at: (
            lambda b: b[:at] + fragment.encode("utf-8", "surrogatepass") + b[at:]
        )(envelope(ORG_ID.lower()[:15], (notification_id(), "Lead", lead()))),
        st.text(max_size=30) | st.sampled_from(["<!DOCTYPE x>", "&x;", "</soapenv:Body>", "\x00"]),
        st.integers(0, 1400),
    ),
)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=hostile)
def test_hostile_input_is_never_a_5xx_and_never_stored(
    app_url: str, engine: Engine, body: bytes
) -> None:
    answer = post(app_url, body)
    assert answer.status_code in (400, 403, 413), answer.content
    assert b"Ack" not in answer.content
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(SalesforceDelivery)).one() == 0


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=xml_text, attribute=xml_text)
def test_any_text_value_arrives_as_sent(
    app_url: str, engine: Engine, value: str, attribute: str
) -> None:
    nid = notification_id()
    body = envelope(ORG_ID, (nid, "Lead", lead(Description=value))).replace(
        b"<sf:Description>", f"<sf:Description label={quoteattr(attribute)}>".encode()
    )
    answer = post(app_url, body)
    if not all(_xml_char(c) for c in value + attribute):  # unsendable, even escaped
        assert answer.status_code == 400
        return
    assert answer.content == ACK
    with Session(engine) as s:
        stored = s.exec(
            select(SalesforceDelivery).where(SalesforceDelivery.notification_id == nid)
        ).one()
    assert stored.record["Description"] == value


# -- through to Aircall -------------------------------------------------------------------------


def test_an_outbound_message_gives_the_record_one_aircall_contact(stack: Stack) -> None:
    with_phone = stack.org.insert(
        "Lead", {"LastName": "Lee", "Company": "ACME", "Phone": "+14155550100"}
    )
    # The admin picked no phone field: the record is read from Salesforce for its numbers.
    without_phone_field = stack.org.insert(
        "Contact", {"FirstName": "Gary", "LastName": "Jennings", "MobilePhone": "(415) 555-0142"}
    )
    gone = stack.org.insert("Lead", {"LastName": "Gone", "Company": "ACME"})
    stack.org.delete("Lead", gone)  # deleted before the message arrived: no data, no contact
    org_id = stack.settings.salesforce_org_id
    body = envelope(
        org_id,
        (notification_id(), "Lead", {"Id": with_phone, "LastName": "Lee", "Phone": "+14155550100"}),
        (notification_id(), "Contact", {"Id": without_phone_field, "LastName": "Jennings"}),
        (notification_id(), "Lead", {"Id": gone}),
    )
    assert post(stack.app.url, body).content == ACK
    assert post(stack.app.url, body).content == ACK  # sent again: nothing more happens
    done = settled(stack.engine, "aircall_contact", count=2)
    assert all(job.status == "done" for job in done)
    assert gone not in {job.payload["id"] for job in done}  # re-read first: it does not exist
    contacts = {c["information"]: c for c in stack.company.list_contacts()}
    assert set(contacts) == {f"salesforce_id:{with_phone}", f"salesforce_id:{without_phone_field}"}
    gary = contacts[f"salesforce_id:{without_phone_field}"]
    assert [p["value"] for p in gary["phone_numbers"]] == ["+14155550142"]
    assert gary["first_name"] == "Gary"
    with Session(stack.engine) as s:
        links = s.exec(select(AircallContactLink)).all()
    assert {link.record_id for link in links} == {with_phone, without_phone_field}


# -- a forged message (issue 14, item 5) ----------------------------------------------------------


def test_a_message_without_the_urls_secret_is_refused_and_not_stored(
    app_url: str, engine: Engine
) -> None:
    body = envelope(ORG_ID, (notification_id(), "Lead", lead()))  # our OrganizationId: no secret
    for token in (None, "x" * len(OUTBOUND_TOKEN), OUTBOUND_TOKEN[:-1], "\u00e9" * 40):
        answer = post(app_url, body, token=token)
        assert answer.status_code == 403, token
        assert b"Ack" not in answer.content
    assert post(app_url, body, token=None).status_code == 403
    assert b"token in the URL" in post(app_url, body, token=None).content
    assert deliveries(engine) == []
    assert jobs(engine) == []


def test_without_a_token_set_the_endpoint_is_off_and_health_says_so(
    engine: Engine, database_url: str
) -> None:
    from web.app import create_app

    config = Settings(_env_file=None, database_url=database_url, salesforce_org_id=ORG_ID)
    with serve(create_app(config, engine=engine, worker=False)) as app:
        body = envelope(ORG_ID, (notification_id(), "Lead", lead()))
        for token in (None, OUTBOUND_TOKEN):
            answer = post(app.url, body, token=token)
            assert answer.status_code == 503
            assert b"OUTBOUND_MESSAGE_TOKEN is not set" in answer.content
        health = httpx.get(f"{app.url}/healthz").json()
    assert health["outbound_messages"] == "off: OUTBOUND_MESSAGE_TOKEN is not set"
    assert deliveries(engine) == []


def test_a_message_for_records_that_do_not_exist_does_nothing(stack: Stack) -> None:
    real = stack.org.insert("Lead", {"LastName": "Lee", "Company": "ACME", "Phone": "+14155550100"})
    forged = to18("00Q5e00000ZzZzZ")  # never existed
    gone = stack.org.insert("Lead", {"LastName": "Gone", "Company": "ACME"})
    stack.org.delete("Lead", gone)
    body = envelope(
        stack.settings.salesforce_org_id,
        (notification_id(), "Lead", lead(forged, LastName="Forged", Phone="+14155550199")),
        (notification_id(), "Lead", lead(gone, LastName="Gone", Phone="+14155550198")),
    )
    assert post(stack.app.url, body).content == ACK  # acked: Salesforce must not send it again
    (read,) = settled(stack.engine, "outbound_message")  # the worker reads the records
    assert (read.status, read.result["existing"]) == ("done", 0)
    assert deliveries(stack.engine) == []
    assert [job.kind for job in jobs(stack.engine)] == ["outbound_message"]
    # The same message naming one real record acts on that one only, with its values now.
    body = envelope(
        stack.settings.salesforce_org_id,
        (notification_id(), "Lead", lead(forged, LastName="Forged", Phone="+14155550199")),
        (notification_id(), "Lead", lead(real, LastName="Stale", Phone="+14155550197")),
    )
    assert post(stack.app.url, body).content == ACK
    settled(stack.engine, "outbound_message", count=2)
    (stored,) = deliveries(stack.engine)
    assert stored.record_id == real
    assert (stored.record["LastName"], stored.record["Phone"]) == ("Lee", "+14155550100")
    settled(stack.engine, "aircall_contact")
    assert [c["information"] for c in stack.company.list_contacts()] == [f"salesforce_id:{real}"]


def test_the_records_of_a_message_are_read_in_one_query_by_the_worker(stack: Stack) -> None:
    """Acked at once, whatever Salesforce's state: the worker reads the records afterwards."""
    shipped = {a.builtin: a.id for a in builder.summaries(stack.engine) if a.builtin}
    t05 = next(i for name, i in shipped.items() if name and name.startswith("T05"))
    definitions.set_enabled(stack.engine, t05, False, by="test")  # only the read is counted
    ids = [stack.org.insert("Lead", {"LastName": f"L{n}", "Company": "ACME"}) for n in range(3)]
    body = envelope(
        stack.settings.salesforce_org_id,
        *((notification_id(), "Lead", {"Id": i, "LastName": "x", "Company": "y"}) for i in ids),
    )
    before = stack.org.requests["GET query"]
    stack.org.faults.add(Fault(method="GET", path=r"/query", status=503, body="down", times=1))
    assert post(stack.app.url, body).content == ACK  # Salesforce down: acked all the same
    (read,) = settled(stack.engine, "outbound_message")
    assert (read.status, read.attempts) == ("done", 2)  # the failed read was tried again
    # One query for the three records (the refused try was answered by the fault, not the org).
    assert stack.org.requests["GET query"] - before == 1
    assert {d.record_id for d in deliveries(stack.engine)} == set(ids)
    assert {d.record["LastName"] for d in deliveries(stack.engine)} == {"L0", "L1", "L2"}
