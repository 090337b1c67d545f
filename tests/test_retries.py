"""Every retry path, proved against the emulators' fault injection: final Salesforce state and
the job's state, never "a function was called"."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import Engine

from integrations.aircall.emulator import Fault as AircallFault
from integrations.loopback import wait_for
from integrations.salesforce.emulator import Fault, Org
from integrations.store.models import Job
from integrations.sync.jobs import queue
from tests.conftest import WEBHOOK_TOKEN, Stack, StackWith
from tests.helpers import AGENT_EMAIL, answered_inbound_call, jobs, settled, steps, worker_env

TASK_CREATE = r"/sobjects/Task/?$"


def _call(stack: Stack) -> int:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    stack.org.insert("Contact", {"LastName": "Jennings", "Phone": "+14155550100"})
    call_id = answered_inbound_call(stack.company, number["id"], agent["id"], "+14155550100")
    stack.sender.drain(timeout=10)
    return call_id


def _log_job(stack: Stack) -> Job:
    """The call's newest log_call job, once every one has settled."""
    return settled(stack.engine, "log_call")[-1]


def _creates(stack: Stack) -> tuple[int, int]:
    """(failed, succeeded) attempts to create the Task, from the call's timeline."""
    tries = steps(stack.engine, "create Task")
    return sum(not t.ok for t in tries), sum(t.ok for t in tries)


def test_503_then_success(stack: Stack) -> None:
    stack.org.faults.add(
        Fault(
            method="POST",
            path=TASK_CREATE,
            kind="status",
            status=503,
            body="<html>Service Unavailable</html>",
            times=2,
        )
    )
    call_id = _call(stack)
    job = _log_job(stack)
    assert job.status == "done"
    assert _creates(stack) == (2, 1)
    (task,) = stack.org.records("Task")
    assert task["CallObject"] == str(call_id)


def test_unable_to_lock_row_is_retried(stack: Stack) -> None:
    body = [
        {
            "message": "unable to obtain exclusive access to this record or 1 records: 003",
            "errorCode": "UNABLE_TO_LOCK_ROW",
            "fields": [],
        }
    ]
    stack.org.faults.add(Fault(method="POST", path=TASK_CREATE, status=400, body=body))
    _call(stack)
    job = _log_job(stack)
    assert job.status == "done"
    assert _creates(stack) == (1, 1)
    assert len(stack.org.records("Task")) == 1


def test_expired_session_logs_in_again_once(stack: Stack) -> None:
    stack.org.faults.add(Fault(method="POST", path=TASK_CREATE, kind="expire_session"))
    _call(stack)
    job = _log_job(stack)
    assert job.status == "done"
    assert _creates(stack) == (0, 1)  # logged in again inside the attempt: no failure
    assert len(stack.org.records("Task")) == 1


def test_timeout_after_salesforce_created_the_task_does_not_duplicate(stack: Stack) -> None:
    # The Task is committed, then the answer takes longer than our 2 s client timeout.
    stack.org.faults.add(
        Fault(method="POST", path=TASK_CREATE, kind="after_commit_delay", delay=3.0)
    )
    call_id = _call(stack)
    job = _log_job(stack)
    assert job.status == "done"
    assert _creates(stack) == (1, 0)  # the answer was lost; the Task was found, not remade
    assert [step.ok for step in steps(stack.engine, "find Task by CallObject")] == [True]
    (task,) = stack.org.records("Task")
    assert task["CallObject"] == str(call_id)
    assert job.result["id"] == task["Id"]


def test_dropped_connection_after_create_does_not_duplicate(stack: Stack) -> None:
    stack.org.faults.add(Fault(method="POST", path=TASK_CREATE, kind="drop"))
    _call(stack)
    job = _log_job(stack)
    assert job.status == "done"
    assert len(stack.org.records("Task")) == 1


def test_permanent_error_is_parked_verbatim_and_resync_fixes_it(stack: Stack) -> None:
    body = [
        {
            "message": "Call Type: bad value for restricted picklist field: Inbound",
            "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "fields": ["CallType"],
        }
    ]
    stack.org.faults.add(Fault(method="POST", path=TASK_CREATE, status=400, body=body))
    _call(stack)
    job = _log_job(stack)
    assert job.status == "failed"
    assert job.error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert "bad value for restricted picklist field: Inbound" in job.last_error
    assert stack.org.records("Task") == []
    assert queue.resync(stack.engine, job.id)
    wait_for(lambda: jobs(stack.engine, "log_call")[-1].status == "done", timeout=10)
    assert len(stack.org.records("Task")) == 1


def test_aircall_429_waits_for_the_reset_then_sends_the_card(stack: Stack) -> None:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    reset = int(time.time()) + 2
    stack.company.faults.add(
        AircallFault(method="POST", path=r"/insight_cards$", kind="status", status=429, reset=reset)
    )
    call = stack.company.start_call(
        direction="inbound", external="+14155550100", number_id=number["id"], user_id=agent["id"]
    )
    stack.company.answer(call["id"], user_id=agent["id"])
    stack.sender.drain(timeout=10)
    wait_for(lambda: stack.company.insight_cards, timeout=15)
    (card,) = stack.company.insight_cards
    assert card["call_id"] == call["id"]
    assert card["received_at"] >= reset
    (job,) = settled(stack.engine, "insight_card")
    assert (job.status, job.attempts) == ("done", 2)


@pytest.mark.parametrize("external_id", ["", "Aircall_Call_Id__c"])
def test_worker_killed_between_claim_and_completion(
    stack_with: StackWith, engine: Engine, org: Org, external_id: str
) -> None:
    """A real worker process is SIGKILLed mid-job; its lease runs out and the job runs again:
    it finds the Task by ``CallObject``, or, with an external ID field, upserts onto it."""
    # The Task is created, but the answer comes late: the worker dies while it waits.
    path = rf"/sobjects/Task/{external_id}/" if external_id else TASK_CREATE
    method = "PATCH" if external_id else "POST"
    if external_id:
        org.add_field("Task", external_id, "string", length=32, externalId=True, unique=True)
    org.faults.add(Fault(method=method, path=path, kind="after_commit_delay", delay=30.0))
    with stack_with(worker=False) as stack:
        settings = stack.settings
        env = worker_env(
            settings,
            WEBHOOK_TOKEN,
            JOB_LEASE_SECONDS="2",
            SALESFORCE_TIMEOUT_SECONDS="30",  # the late answer is waited for: the kill comes first
            RETRY_BASE_SECONDS="2",
            TASK_EXTERNAL_ID_FIELD=external_id,
        )
        doomed = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "--log-level", "WARNING", "worker"], env=env
        )
        try:
            call_id = _call(stack)
            wait_for(lambda: org.records("Task"), timeout=20)  # the create reached Salesforce
            assert jobs(engine, "log_call")[0].status == "running"
        finally:
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=10)
        survivor = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "--log-level", "WARNING", "worker"], env=env
        )
        try:
            job = settled(engine, "log_call", timeout=30)[-1]
        finally:
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(timeout=20)
    assert job.status == "done"
    (task,) = org.records("Task")
    assert task["CallObject"] == str(call_id)
    assert task["Status"] == "Completed"
    assert job.result["id"] == task["Id"]
