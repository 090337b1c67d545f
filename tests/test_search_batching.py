"""New callers looked up at the same moment share one SOSL search (``FIND {a OR b}``), and each
gets what its own search would have given: its own record, both callers a record holding both
numbers, every hit of a number whose rows a shared search might have cut."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.salesforce.emulator import Fault, Org, sosl
from integrations.salesforce.soql import (
    MAX_TERM,
    phone_digits,
    phone_groups,
    sosl_phones_search,
)
from integrations.sync.callers import matching
from integrations.sync.callers.matching import Decision, cached_matches
from integrations.sync.callers.searches import GROUP
from integrations.sync.jobs.worker import make_context
from tests.conftest import WEBHOOK_TOKEN, Stack, StackWith
from tests.helpers import (
    AGENT_EMAIL,
    answered_inbound_call,
    jobs,
    settled,
    worker_env,
    worker_process,
)

WINDOW = 3.0  # long enough that a search held for the window would show
NUMBERS = [f"+1212555{n:04d}" for n in range(301, 307)]


def _searches(stack: Stack) -> int:
    return stack.org.requests["GET search"]


def _look_up(stack: Stack, numbers: list[str]) -> list[Decision]:
    """Jobs of one worker looking these numbers up at once, as a burst of new callers does."""
    ctx = make_context(stack.settings, stack.engine)

    async def look_ups() -> list[Decision]:
        async def one(e164: str) -> Decision:
            with ctx.writes.writer():
                await asyncio.sleep(0)  # every job is running before the first asks
                return await ctx.caller(e164)

        try:
            return await asyncio.gather(*(one(n) for n in numbers))
        finally:
            await ctx.aircall.aclose()

    try:
        return asyncio.run(look_ups())
    finally:
        ctx.salesforce.close()


def _ids(decisions: list[Decision]) -> list[str | None]:
    return [d.match.id if d.match else None for d in decisions]


def test_new_callers_looked_up_together_share_one_search(stack_with: StackWith) -> None:
    with stack_with(worker=False, salesforce_batch_window_seconds=WINDOW) as stack:
        own = [
            stack.org.insert("Contact", {"LastName": f"Own{i}", "Phone": number})
            for i, number in enumerate(NUMBERS[:3])
        ]
        lead = stack.org.insert(
            "Lead", {"LastName": "Lee", "Company": "ACME", "MobilePhone": "(212) 555-0304"}
        )
        # Found loosely by a number's search (its last 7 digits), but not that number: no one's.
        stack.org.insert("Contact", {"LastName": "Loose", "Phone": "555-0301"})
        both = stack.org.insert(
            "Contact", {"LastName": "Both", "Phone": NUMBERS[4], "HomePhone": NUMBERS[5]}
        )
        before = _searches(stack)
        decisions = _look_up(stack, NUMBERS)
        searches = _searches(stack) - before
        assert _ids(decisions) == [*own, lead, both, both]
        for number, decision in zip(NUMBERS, decisions, strict=True):
            assert [m["id"] for m in cached_matches(stack.engine, number)] == [decision.match.id]
    assert searches <= 2, searches  # one, or the first alone and the rest together


def test_a_lone_new_caller_costs_one_search_at_once(stack_with: StackWith) -> None:
    with stack_with(worker=False, salesforce_batch_window_seconds=WINDOW) as stack:
        contact = stack.org.insert("Contact", {"LastName": "Alone", "Phone": NUMBERS[0]})
        before, started = _searches(stack), time.monotonic()
        (decision,) = _look_up(stack, NUMBERS[:1])
        took = time.monotonic() - started
        assert _searches(stack) - before == 1
    assert _ids([decision]) == [contact]
    assert took < WINDOW  # not held for the batch window


def test_a_shared_search_whose_rows_may_be_cut_becomes_a_search_each(
    stack_with: StackWith,
) -> None:
    """A switchboard's 700 Contacts would fill the Contacts' share (2,000 / 3 objects) of the
    shared search: other numbers' Contacts could be missing, so each number is searched alone
    and the switchboard keeps every hit."""
    switchboard = "+12125550399"
    with stack_with(worker=False, salesforce_batch_window_seconds=WINDOW) as stack:
        staff = [
            stack.org.insert("Contact", {"LastName": f"Staff{i}", "Phone": switchboard})
            for i in range(700)
        ]
        own = [
            stack.org.insert("Contact", {"LastName": f"Own{i}", "Phone": number})
            for i, number in enumerate(NUMBERS[:2])
        ]
        before = _searches(stack)
        decisions = _look_up(stack, [switchboard, *NUMBERS[:2]])
        searches = _searches(stack) - before
        hits = {m["id"] for m in cached_matches(stack.engine, switchboard)}
    assert _ids(decisions)[1:] == own
    assert hits == set(staff)
    assert searches <= 1 + 3  # the shared one, then one each


def test_a_refused_shared_search_leaves_each_number_its_own(stack_with: StackWith) -> None:
    with stack_with(worker=False, salesforce_batch_window_seconds=WINDOW) as stack:
        own = [
            stack.org.insert("Contact", {"LastName": f"Own{i}", "Phone": number})
            for i, number in enumerate(NUMBERS[:3])
        ]
        refusal = [{"errorCode": "MALFORMED_SEARCH", "message": "search term too complex"}]
        stack.org.faults.add(
            Fault(method="GET", path=r"/search/?$", kind="status", status=400, body=refusal)
        )
        decisions = _look_up(stack, NUMBERS[:3])
    assert _ids(decisions) == own


def test_a_shared_search_keeps_person_accounts_and_field_security(stack_with: StackWith) -> None:
    """A person account's hidden phone field is neither searched nor compared in the shared
    search either; the person is found by the phones the integration user can see."""
    with stack_with(worker=False, salesforce_batch_window_seconds=WINDOW) as stack:
        stack.org.enable_person_accounts()
        stack.org.hide_field("Account", "PersonMobilePhone")
        person = stack.org.insert(
            "Account", {"FirstName": "Pat", "LastName": "Person", "PersonOtherPhone": NUMBERS[0]}
        )
        contact = stack.org.insert("Contact", {"LastName": "Own", "Phone": NUMBERS[1]})
        decisions = _look_up(stack, NUMBERS[:2])
        account = stack.org.get("Account", person)
        searches = [s for s in stack.org.statements if s.startswith("FIND")]
    assert account is not None
    assert [(d.match.sobject, d.match.id) for d in decisions if d.match] == [
        ("Account", person),
        ("Contact", contact),
    ]
    assert decisions[0].match.person_contact == account["PersonContactId"]
    assert len(searches) == 1
    assert " OR " in searches[0]
    assert "PersonMobilePhone" not in searches[0]


def test_a_shared_search_refused_for_a_card_field_is_sent_once_more_without_them(
    stack_with: StackWith, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stack_with(worker=False, salesforce_batch_window_seconds=WINDOW) as stack:
        leads = [
            stack.org.insert("Lead", {"LastName": f"Lee{i}", "Company": "Initech", "Phone": n})
            for i, n in enumerate(NUMBERS[:3])
        ]
        # As Salesforce answers a field hidden from the integration user: INVALID_FIELD.
        monkeypatch.setitem(matching.CONTEXT_FIELDS, "Lead", ["Name", "Owner.Department"])
        before = _searches(stack)
        decisions = _look_up(stack, NUMBERS[:3])
        searches = _searches(stack) - before
    assert _ids(decisions) == leads
    assert searches == 2  # the refused shared search, then one without the card's fields


def test_a_burst_of_new_callers_is_logged_on_its_own_records(stack_with: StackWith) -> None:
    """Calls from five new numbers whose Tasks are due together: fewer searches than numbers,
    each call on its caller's record, a Contact holding two of the numbers gets both calls."""
    callers = NUMBERS[:5]
    with stack_with(worker=False) as stack:
        agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
        line = stack.company.add_number("Support line", "+1 415 555 0199")
        records = [
            stack.org.insert("Contact", {"LastName": f"Own{i}", "Phone": caller})
            for i, caller in enumerate(callers[:3])
        ]
        both = stack.org.insert(
            "Contact", {"LastName": "Both", "Phone": callers[3], "MobilePhone": callers[4]}
        )
        made = [answered_inbound_call(stack.company, line["id"], agent["id"], c) for c in callers]
        stack.sender.drain(timeout=20)
        assert len(jobs(stack.engine, "log_call")) == len(callers)
        before = _searches(stack)
        env = worker_env(stack.settings, WEBHOOK_TOKEN, SALESFORCE_BATCH_WINDOW_SECONDS=str(WINDOW))
        with worker_process(env):
            done = settled(stack.engine, "log_call", count=len(callers), timeout=60)
        searches = _searches(stack) - before
        tasks = {task["CallObject"]: task["WhoId"] for task in stack.org.records("Task")}
    assert [job.status for job in done] == ["done"] * len(callers)
    assert [tasks[str(call)] for call in made] == [*records, both, both]
    assert searches < len(callers), searches


_NUMBER = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\+?[0-9 ()\-.]{0,20}", fullmatch=True),
    st.text(alphabet="0123456789{}\\*?\"' OR", max_size=25),
)


@given(st.lists(_NUMBER, max_size=80))
def test_hostile_numbers_never_break_a_shared_search(numbers: list[str]) -> None:
    """Whatever the numbers, each group's FIND parses as Salesforce reads it: one OR'ed word per
    number, its digits and nothing else, within the length Salesforce keeps operators for."""
    org = Org()
    groups = phone_groups(numbers, GROUP)
    assert sorted(n for group in groups for n in group) == sorted(set(numbers))
    for group in groups:
        if len(group) == 1:
            continue  # searched alone, as today: its own answer
        assert len(group) <= GROUP
        statement = sosl_phones_search(group, {"Contact": ["Id", "Phone"]}, limit=666)
        term = statement[statement.index("{") + 1 : statement.index("}")]
        assert len(term) <= MAX_TERM
        search = sosl.parse(org, statement)
        words = [[(w.text, w.wildcard) for w in alt] for alt in search.alternatives]
        digits = list(dict.fromkeys(phone_digits(n) for n in group))
        assert words == [[(d, "")] for d in digits]
        assert search.targets[0].limit == 666
        assert sosl.run(org, statement, "v59.0") == []
