"""Calls whose Tasks are due together share one sObject Collections request; each record's
outcome is its own call's: one refusal parks that call alone, a lost answer makes no duplicate."""

from __future__ import annotations

import asyncio

import pytest

from integrations.errors import RemoteRejected
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Fault
from integrations.sync.automations import fieldmap
from integrations.sync.jobs.worker import make_context
from tests.conftest import WEBHOOK_TOKEN, Stack, StackWith
from tests.helpers import (
    AGENT_EMAIL,
    answered_inbound_call,
    events,
    jobs,
    saved_before_the_check,
    settled,
    steps,
    worker_env,
    worker_process,
)

CALLER = "+14155550100"
COLLECTION = r"/composite/sobjects/?$"
COLLECTION_UPSERT = r"/composite/sobjects/Task/Aircall_Call_Id__c/?$"


def _calls(stack: Stack, count: int, lines: list[str]) -> list[int]:
    """``count`` answered and ended calls from a known Contact, spread over ``lines``; their
    ``log_call`` jobs wait queued (the stack has no worker)."""
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    numbers = [stack.company.add_number(f"Line {n}", digits) for n, digits in enumerate(lines)]
    stack.org.insert("Contact", {"LastName": "Jennings", "Phone": CALLER})
    made = [
        answered_inbound_call(stack.company, numbers[n % len(numbers)]["id"], agent["id"], CALLER)
        for n in range(count)
    ]
    stack.sender.drain(timeout=20)
    queued = jobs(stack.engine, "log_call")
    assert len(queued) == count
    assert all(job.status == "queued" for job in queued)
    return made


def _task_calls(stack: Stack) -> list[str]:
    return sorted(task["CallObject"] for task in stack.org.records("Task"))


def _writes(stack: Stack) -> dict[str, int]:
    """Task writes Salesforce received, by request kind."""
    kinds = ("POST sobjects/Task", "PATCH sobjects/Task", "POST composite/sobjects")
    return {kind: stack.org.requests[kind] for kind in kinds if stack.org.requests[kind]}


# Long enough that every job of a test joins the batch even on a slow machine.
WINDOW = {"SALESFORCE_BATCH_WINDOW_SECONDS": "3"}


def test_calls_due_together_are_logged_in_at_most_two_create_requests(
    stack_with: StackWith,
) -> None:
    """Jobs claimed together wait for each other: their Tasks go in one or two requests."""
    with stack_with(worker=False) as stack:
        made = _calls(stack, 12, ["+1 212 555 0199"])
        with worker_process(worker_env(stack.settings, WEBHOOK_TOKEN, **WINDOW)):
            done = settled(stack.engine, "log_call", count=12, timeout=60)
    assert [job.status for job in done] == ["done"] * 12
    assert _task_calls(stack) == sorted(str(c) for c in made)
    writes = _writes(stack)
    assert writes["POST composite/sobjects"] >= 1
    assert sum(writes.values()) <= 2, writes


def test_a_lone_call_on_a_quiet_org_goes_at_once_in_a_plain_create(stack: Stack) -> None:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    call_id = answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
    stack.sender.drain(timeout=10)
    job = settled(stack.engine, "log_call")[-1]  # the newest: the answer's may have ended waiting
    assert job.status == "done"
    assert _task_calls(stack) == [str(call_id)]
    assert _writes(stack) == {"POST sobjects/Task": 1}
    (create,) = steps(stack.engine, "create Task")
    (ended,) = [e for e in events(stack.engine) if e.name == "call.ended"]
    # Went at once: the batch window did not hold it.
    assert create.at - ended.received_at < stack.settings.salesforce_batch_window_seconds


def test_one_refused_record_parks_its_own_call_and_the_others_are_logged(
    stack_with: StackWith,
) -> None:
    allowed, other = "+12125550199", "+12125550142"
    with stack_with(worker=False) as stack:
        stack.org.add_field(
            "Task",
            "Line__c",
            "picklist",
            picklistValues=[allowed],
            restrictedPicklist=True,
        )
        mapping = {**fieldmap.DEFAULT_MAPPINGS["Task"], "Line__c": "call.number.digits|e164"}
        # The editor now refuses this (a computed value into a restricted picklist): a mapping
        # kept from before that check, as an upgraded install has.
        saved_before_the_check(stack.engine, "Task", mapping)
        made = _calls(stack, 6, [allowed, allowed, other])
        with worker_process(worker_env(stack.settings, WEBHOOK_TOKEN, **WINDOW)):
            done = settled(stack.engine, "log_call", count=6, timeout=60)
    by_call = {job.call_id: job for job in done}
    refused = [made[2], made[5]]  # the calls on the other line
    assert sorted(c for c, job in by_call.items() if job.status == "failed") == sorted(refused)
    for call_id in refused:
        job = by_call[call_id]
        assert job.error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        assert "Line__c" in (job.last_error or "")
    logged = [c for c in made if c not in refused]
    assert _task_calls(stack) == sorted(str(c) for c in logged)
    assert sum(_writes(stack).values()) <= 2


def test_a_batch_whose_answer_is_lost_leaves_one_task_per_call(stack_with: StackWith) -> None:
    """Salesforce makes the Tasks but the answer never comes (the client times out): every
    call's next attempt finds its Task by ``CallObject`` instead of creating another."""
    with stack_with(worker=False) as stack:
        made = _calls(stack, 8, ["+1 212 555 0199"])
        stack.org.faults.add(
            Fault(method="POST", path=COLLECTION, kind="after_commit_delay", delay=5.0)
        )
        with worker_process(worker_env(stack.settings, WEBHOOK_TOKEN)):
            done = settled(stack.engine, "log_call", count=8, timeout=60)
    assert [job.status for job in done] == ["done"] * 8
    assert _task_calls(stack) == sorted(str(c) for c in made)
    retried = [job for job in done if job.attempts > 1]
    assert retried
    # Each retry looked its Task up first (those due together in one query) and found it.
    assert len(steps(stack.engine, "find Task by CallObject")) == len(retried)


EXTERNAL_ID = "Aircall_Call_Id__c"


def _with_external_id(stack: Stack) -> None:
    stack.org.add_field("Task", EXTERNAL_ID, "string", length=32, externalId=True, unique=True)


def test_with_an_external_id_field_a_lost_batch_answer_needs_no_look_up(
    stack_with: StackWith,
) -> None:
    """The Tasks are upserted on the call id: the retries after the lost answer find them by
    the field itself (no look-up by ``CallObject``); their create-only ``TaskSubtype`` refused
    on the existing Tasks, they are written once more without it."""
    with stack_with(worker=False, task_external_id_field=EXTERNAL_ID) as stack:
        _with_external_id(stack)
        made = _calls(stack, 8, ["+1 212 555 0199"])
        stack.org.faults.add(
            Fault(method="PATCH", path=COLLECTION_UPSERT, kind="after_commit_delay", delay=5.0)
        )
        env = worker_env(stack.settings, WEBHOOK_TOKEN, TASK_EXTERNAL_ID_FIELD=EXTERNAL_ID)
        with worker_process(env):
            done = settled(stack.engine, "log_call", count=8, timeout=60)
    assert [job.status for job in done] == ["done"] * 8
    assert _task_calls(stack) == sorted(str(c) for c in made)
    assert sorted(t[EXTERNAL_ID] for t in stack.org.records("Task")) == sorted(str(c) for c in made)
    assert steps(stack.engine, "find Task by CallObject") == []
    assert stack.org.requests["PATCH composite/sobjects"] < len(made)  # still batched
    assert {t["TaskSubtype"] for t in stack.org.records("Task")} == {"Call"}


def test_the_emulator_refuses_a_second_record_with_a_unique_value(stack: Stack) -> None:
    _with_external_id(stack)
    sf = SalesforceClient(stack.settings)
    try:
        sf.create("Task", {"Subject": "one", EXTERNAL_ID: "42"})
        with pytest.raises(RemoteRejected) as refused:
            sf.create("Task", {"Subject": "two", EXTERNAL_ID: "42"})
        assert refused.value.error_code == "DUPLICATE_VALUE"
        first = sf.upsert("Task", EXTERNAL_ID, "42", {"Subject": "again"})
        (outcome,) = sf.upsert_many("Task", EXTERNAL_ID, [("42", {"Subject": "thrice"})])
    finally:
        sf.close()
    (task,) = stack.org.records("Task")
    assert task["Id"] == first == outcome.id
    assert task["Subject"] == "thrice"


def test_look_ups_due_together_share_one_query(stack_with: StackWith) -> None:
    """Jobs looking their call's Task up at once (as after a lost batch answer): the first
    goes at once, the others share one ``CallObject IN (...)`` query; each gets its own row,
    or none."""
    with stack_with(worker=False) as stack:
        made = _calls(stack, 4, ["+1 212 555 0199"])
        logged = [
            stack.org.insert("Task", {"Subject": "Call", "CallObject": str(c)}) for c in made[:3]
        ]
        ctx = make_context(stack.settings, stack.engine)

        async def look_ups() -> list[dict | None]:
            async def one(call_id: int) -> dict | None:
                with ctx.writes.writer():
                    await asyncio.sleep(0)  # every job is running before the first asks
                    return await ctx.find("Task", "CallObject", str(call_id), ("Id",))

            try:
                return await asyncio.gather(*(one(c) for c in made))
            finally:
                await ctx.aircall.aclose()

        before = stack.org.requests["GET query"]
        rows = asyncio.run(look_ups())
        ctx.salesforce.close()
    assert [row["Id"] if row else None for row in rows] == [*logged, None]
    assert stack.org.requests["GET query"] - before <= 2
