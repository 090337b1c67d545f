"""A01 Create Contact and A04 Add Comment against the Aircall emulator, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from integrations.aircall import actions
from integrations.aircall.client import AircallClient, make_http
from integrations.aircall.emulator import Company, Fault
from integrations.loopback import Running
from integrations.settings import Settings

T = TypeVar("T")
LEAD_ID = "00Q5e00000AbCdEFGH"


def run(aircall: Running, action: Callable[[AircallClient], Awaitable[T]]) -> T:
    """Run one action with a client of our own (no shared rate budget in these tests)."""

    async def go() -> T:
        settings = Settings(
            _env_file=None,
            aircall_api_url=aircall.url,
            aircall_api_id="emulator-id",
            aircall_api_token=SecretStr("emulator-token"),
        )

        async def spend() -> float:
            return 0.0

        async def hold(_until: float) -> None:
            return None

        client = AircallClient(make_http(settings), spend, hold)
        try:
            return await action(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def lead(**fields: object) -> dict[str, object]:
    return {"FirstName": "Ada", "LastName": "Lee", "Company": "ACME", **fields}


# -- A01 ----------------------------------------------------------------------------------------


def test_contact_is_made_once_with_e164_numbers_and_the_salesforce_id(
    aircall: Running, company: Company
) -> None:
    body = actions.contact_body(
        lead(Phone="(415) 555-0100", MobilePhone="+1 415 555 0101", Email="ada@acme.example"),
        LEAD_ID,
        "US",
    )
    contact, created = run(aircall, lambda c: actions.create_contact(c, body, LEAD_ID))
    again, created_again = run(aircall, lambda c: actions.create_contact(c, body, LEAD_ID))
    assert (created, created_again) == (True, False)
    assert again["id"] == contact["id"]
    (stored,) = company.list_contacts()
    assert stored["information"] == f"salesforce_id:{LEAD_ID}"
    assert [(p["label"], p["value"]) for p in stored["phone_numbers"]] == [
        ("Work", "+14155550100"),
        ("Mobile", "+14155550101"),
    ]
    assert (stored["first_name"], stored["last_name"], stored["company_name"]) == (
        "Ada",
        "Lee",
        "ACME",
    )
    assert [e["value"] for e in stored["emails"]] == ["ada@acme.example"]


def test_an_aircall_contact_already_holding_a_number_is_reused(
    aircall: Running, company: Company
) -> None:
    existing = company.add_contact("Ada", "Lee", ["+1 415-555-0101"])
    body = actions.contact_body(lead(Phone="+14155550100", MobilePhone="4155550101"), LEAD_ID, "US")
    contact, created = run(aircall, lambda c: actions.create_contact(c, body, LEAD_ID))
    assert not created
    assert contact["id"] == existing["id"]
    assert len(company.list_contacts()) == 1


def test_a_record_with_more_than_20_numbers_keeps_the_first_20(
    aircall: Running, company: Company
) -> None:
    phones = {f"Line{n:02d}Phone__c": f"+1415555{n:04d}" for n in range(25)}
    body = actions.contact_body(lead(Phone="+14155550100", **phones), LEAD_ID, "US")
    assert len(body["phone_numbers"]) == 20
    assert body["phone_numbers"][0] == {"label": "Work", "value": "+14155550100"}
    run(aircall, lambda c: actions.create_contact(c, body, LEAD_ID))
    (stored,) = company.list_contacts()
    assert len(stored["phone_numbers"]) == 20


def test_a_record_without_a_usable_number_is_refused_before_aircall() -> None:
    with pytest.raises(actions.NoPhone):
        actions.contact_body(lead(Phone="anonymous", MobilePhone=None), LEAD_ID, "US")


# -- A04 ----------------------------------------------------------------------------------------


def _call_with_comments(company: Company, count: int) -> int:
    agent = company.add_user("Jane Agent", "jane.agent@example.com")
    number = company.add_number("Support", "+1 212 555 0199")
    call = company.start_call(
        direction="inbound", external="+14155550100", number_id=number["id"], user_id=agent["id"]
    )
    for n in range(count):
        company.comment(call["id"], f"agent note {n}", user_id=agent["id"])
    return call["id"]


def _comments(company: Company, call_id: int) -> list[str]:
    return [c["content"] for c in company.call(call_id)["comments"]]


def test_comments_are_posted_while_the_call_has_room(aircall: Running, company: Company) -> None:
    call_id = _call_with_comments(company, 2)
    outcome = run(aircall, lambda c: actions.add_comments(c, call_id, ["Quote sent", "Call back"]))
    assert outcome.posted == ["Quote sent", "Call back"]
    assert outcome.unplaced == []
    assert _comments(company, call_id)[2:] == ["Quote sent", "Call back"]


def test_texts_beyond_the_last_slot_are_merged_into_it(aircall: Running, company: Company) -> None:
    call_id = _call_with_comments(company, 4)
    outcome = run(aircall, lambda c: actions.add_comments(c, call_id, ["one", "two", "three"]))
    assert outcome.posted == ["one\n\ntwo\n\nthree"]
    assert _comments(company, call_id)[4] == "one\n\ntwo\n\nthree"
    assert outcome.unplaced == []


def test_a_full_call_takes_nothing_and_does_not_fail(aircall: Running, company: Company) -> None:
    call_id = _call_with_comments(company, 5)
    outcome = run(aircall, lambda c: actions.add_comments(c, call_id, ["late note"]))
    assert (outcome.posted, outcome.unplaced) == ([], ["late note"])
    assert len(_comments(company, call_id)) == 5


def test_a_retry_does_not_post_the_same_comment_twice(aircall: Running, company: Company) -> None:
    call_id = _call_with_comments(company, 3)
    for _ in range(2):
        run(aircall, lambda c: actions.add_comments(c, call_id, ["a", "b", "c"]))
    assert _comments(company, call_id)[3:] == ["a", "b\n\nc"]


def test_a_slot_taken_between_read_and_post_is_replanned(
    aircall: Running, company: Company
) -> None:
    call_id = _call_with_comments(company, 3)
    company.faults.add(
        Fault(
            method="POST",
            path=r"/comments$",
            status=400,
            body={
                "error": "Bad Request",
                "troubleshoot": "Maximum of 5 notes can be added to a Call.",
            },
        )
    )
    outcome = run(aircall, lambda c: actions.add_comments(c, call_id, ["x"]))
    assert outcome.posted == ["x"]
    assert _comments(company, call_id)[3:] == ["x"]


texts = st.lists(st.text(min_size=1, max_size=8), max_size=8)


@given(existing=st.lists(st.text(max_size=8), max_size=7), new=texts)
def test_a_plan_never_overflows_and_places_every_new_text_when_there_is_room(
    existing: list[str], new: list[str]
) -> None:
    plan = actions.plan_comments(existing, new)
    free = max(actions.MAX_COMMENTS - len(existing), 0)
    assert len(plan) <= free
    assert actions.plan_comments(existing + plan, new) == []  # a retry posts nothing more
    if free:
        assert all(actions.is_on(existing + plan, text) for text in new if text.strip())
