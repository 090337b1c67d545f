"""T05 end to end: the Salesforce emulator sends an Outbound Message, Callbridge acks it after
storing it, and the Lead becomes an Aircall contact (A01)."""

from __future__ import annotations

from integrations.loopback import wait_for
from integrations.salesforce.emulator.outbound import OutboundSender
from tests.conftest import OUTBOUND_TOKEN, Stack


def test_outbound_message_is_acked_and_makes_one_aircall_contact(stack: Stack) -> None:
    lead = stack.org.insert(
        "Lead", {"FirstName": "Pat", "LastName": "Lee", "Company": "ACME", "Phone": "+14155550100"}
    )
    sender = OutboundSender(
        stack.org,
        f"{stack.app.url}/webhooks/salesforce/outbound-message/{OUTBOUND_TOKEN}",
        fields={"Lead": ["FirstName", "LastName", "Company", "Phone"]},
        base_delay=0.05,
    )
    assert sender.notify("Lead", lead)
    assert sender.notify("Lead", lead)  # Salesforce may send it again: stored and acted on once
    contact = wait_for(
        lambda: next(
            (c for c in stack.company.contacts.values() if c.get("last_name") == "Lee"), None
        ),
        timeout=15,
    )
    assert contact["information"] == f"salesforce_id:{lead}"
    assert [p["value"] for p in contact["phone_numbers"]] == ["+14155550100"]
    assert len([c for c in stack.company.contacts.values() if c.get("last_name") == "Lee"]) == 1


def test_a_message_from_another_org_is_not_acked(stack: Stack) -> None:
    from integrations.salesforce.emulator import Org

    stranger = Org()
    lead = stranger.insert("Lead", {"LastName": "Lee", "Company": "ACME", "Phone": "+14155550100"})
    sender = OutboundSender(
        stranger,
        f"{stack.app.url}/webhooks/salesforce/outbound-message/{OUTBOUND_TOKEN}",
        max_attempts=2,
        base_delay=0.01,
    )
    assert not sender.notify("Lead", lead)
    assert stack.company.contacts == {}
