"""Issue 4: the call's own Task comes from the manager's editable Task mapping, and a snapshot
without the recording link is completed from ``GET /v1/calls/{id}``."""

from __future__ import annotations

import json

import pytest

from integrations.errors import BadInput
from integrations.salesforce.client import SalesforceClient
from integrations.sync.automations import fieldmap, mapping_store
from integrations.sync.jobs import queue
from tests.conftest import WEBHOOK_TOKEN, Stack
from tests.helpers import (
    AGENT_EMAIL,
    answered_inbound_call,
    envelope,
    post_webhook,
    saved_before_the_check,
    settled,
    steps,
)
from tests.signin import PASSWORD, sign_in

CALLER = "+14155550100"
MANAGER = "sam@example.com"


def _line(stack: Stack) -> tuple[int, int]:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    return agent["id"], number["id"]


def _task(stack: Stack, call_id: int) -> dict:
    (task,) = [t for t in stack.org.records("Task") if t["CallObject"] == str(call_id)]
    return task


def _form(csrf: str, mapping: dict[str, str]) -> dict[str, str]:
    form = {"csrf_token": csrf, "op": "save"}
    for row, (target, source) in enumerate(mapping.items()):
        form[f"row-{row}-target"] = target
        form[f"row-{row}-source"] = source
    return form


def test_the_shipped_task_mapping_logs_each_kind_of_call_as_before(stack: Stack) -> None:
    agent_id, number_id = _line(stack)
    stack.org.insert("Contact", {"FirstName": "Gary", "LastName": "Jennings", "Phone": CALLER})
    missed = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )["id"]
    stack.company.hangup(missed)
    stack.company.end(missed)
    voicemail = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )["id"]
    stack.company.hangup(voicemail, voicemail=True)
    stack.company.end(voicemail)
    outbound = stack.company.start_call(
        direction="outbound", external=CALLER, number_id=number_id, user_id=agent_id
    )["id"]
    stack.company.answer(outbound)
    stack.company.hangup(outbound)
    stack.company.end(outbound)
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call", count=3)

    assert _task(stack, missed)["Subject"] == "Missed call from Gary Jennings"
    assert "Missed: no agent answered" in _task(stack, missed)["Description"]
    left = _task(stack, voicemail)
    assert left["Subject"] == "Voicemail from Gary Jennings"
    assert (
        f"Voicemail: https://assets.aircall.io/calls/{voicemail}/voicemail" in (left["Description"])
    )
    out = _task(stack, outbound)
    assert (out["Subject"], out["CallType"]) == ("Outbound call to Gary Jennings", "Outbound")
    assert (out["TaskSubtype"], out["Type"], out["Status"]) == ("Call", "Call", "Completed")
    assert steps(stack.engine, "get call") == []  # every snapshot had its link


def test_a_task_mapping_saved_on_the_settings_page_shapes_the_next_calls_task(
    stack: Stack,
) -> None:
    from integrations.store import accounts

    agent_id, number_id = _line(stack)
    contact = stack.org.insert("Contact", {"LastName": "Jennings", "Phone": CALLER})
    stack.org.add_field("Task", "Foo__c", "string", length=80)
    stack.company.add_tag("Hot")
    before = answered_inbound_call(stack.company, number_id, agent_id, CALLER)
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")  # the shipped mapping is now cached in this process
    assert _task(stack, before)["Subject"] == "Inbound call from Jennings"

    accounts.add_user(stack.engine, MANAGER, "manager", PASSWORD)
    manager = sign_in(stack.app.url, MANAGER)
    page = manager.client.get("/automations/mappings/Task").text
    assert '<option value="call_subject">' in page  # the editor offers the Task's own texts
    assert "Inbound call from" in page  # previewed against the stored call
    mapping = {
        **fieldmap.DEFAULT_MAPPINGS["Task"],
        "Subject": "{{call_direction}} call on {{campaign_name}} ({{call.tags|join}})",
        "Foo__c": "Aircall {{call.id}} by {{agent_name}}",
    }
    saved = manager.client.post("/automations/mappings/Task", data=_form(manager.csrf, mapping))
    assert saved.status_code == 303, saved.text

    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )["id"]
    stack.company.answer(call, user_id=agent_id)
    stack.company.tag(call, "Hot", user_id=agent_id)
    stack.company.hangup(call)
    stack.company.end(call)
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call", count=2)

    task = _task(stack, call)
    assert task["Subject"] == "Inbound call on Support line (Hot)"
    assert task["Foo__c"] == f"Aircall {call} by Jane Agent"
    assert (task["CallObject"], task["TaskSubtype"], task["Status"]) == (
        str(call),
        "Call",
        "Completed",
    )
    assert task["WhoId"] == contact
    assert task["CallDisposition"] == "Hot"
    assert f"https://assets.aircall.io/calls/{call}/recording" in task["Description"]


def test_the_fields_that_make_it_the_calls_task_cannot_be_mapped(stack: Stack) -> None:
    sf = SalesforceClient(stack.settings)
    try:
        mapping = {**fieldmap.DEFAULT_MAPPINGS["Task"], "Status": "=Not Started", "whoid": "=x"}
        with pytest.raises(BadInput) as refused:
            mapping_store.save_mapping(stack.engine, sf, "Task", mapping, by=MANAGER)
        assert "Task.Status: set by Callbridge on the call's Task" in str(refused.value)
        assert "Task.whoid: set by Callbridge" in str(refused.value)
        assert mapping_store.load_mapping(stack.engine, "Task") == fieldmap.DEFAULT_MAPPINGS["Task"]
    finally:
        sf.close()


def test_a_task_mapping_salesforce_rejects_fails_the_job_until_fixed_and_resynced(
    stack: Stack,
) -> None:
    sf = SalesforceClient(stack.settings)
    bad = {**fieldmap.DEFAULT_MAPPINGS["Task"], "CallType": "call.tags|join"}
    with pytest.raises(BadInput, match="CallType: a restricted picklist"):
        mapping_store.save_mapping(stack.engine, sf, "Task", bad, by=MANAGER)
    saved_before_the_check(stack.engine, "Task", bad)
    agent_id, number_id = _line(stack)
    stack.company.add_tag("Hot")
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )["id"]
    stack.company.answer(call, user_id=agent_id)
    stack.company.tag(call, "Hot", user_id=agent_id)
    stack.company.hangup(call)
    stack.company.end(call)
    stack.sender.drain(timeout=10)
    # The answer may have queued a job of its own that ended waiting for call.ended before
    # call.ended came: the call's newest job is the one that wrote.
    job = settled(stack.engine, "log_call")[-1]
    assert job.status == "failed"
    assert job.error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert "bad value for restricted picklist field: Hot" in job.last_error
    (error,) = json.loads(job.last_error)  # Salesforce's words, and the row to fix
    assert error["mapping_row"] == "Task field mapping, row CallType = call.tags|join"
    (refused,) = steps(stack.engine, "create Task")
    assert refused.ok is False
    assert refused.received[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert stack.org.records("Task") == []

    fixed = {**bad, "CallType": "call_direction"}
    mapping_store.save_mapping(stack.engine, sf, "Task", fixed, by=MANAGER)
    assert queue.resync(stack.engine, job.id)
    job = settled(stack.engine, "log_call")[-1]
    assert job.status == "done"
    task = _task(stack, call)
    assert (task["CallType"], task["CallDisposition"]) == ("Inbound", "Hot")
    assert task["Subject"] == "Inbound call from +1 415-555-0100"
    sf.close()


def _end_without_the_link(stack: Stack, call_id: int) -> None:
    """Aircall ends the call, but its ``call.ended`` carries no recording yet."""
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")  # the answer's job is over: call.ended queues another
    (webhook,) = stack.company.list_webhooks()
    stack.company.update_webhook(webhook["webhook_id"], {"active": False})
    stack.company.end(call_id)
    assert stack.company.call(call_id)["recording"]  # Aircall has it by now
    early = dict(stack.company.call(call_id), recording=None, asset=None)
    assert post_webhook(stack.app.url, envelope("call.ended", early, WEBHOOK_TOKEN)).is_success


def test_an_ended_snapshot_without_the_recording_is_completed_from_aircall(stack: Stack) -> None:
    agent_id, number_id = _line(stack)
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )["id"]
    stack.company.answer(call, user_id=agent_id)
    stack.company.hangup(call)
    _end_without_the_link(stack, call)
    job = settled(stack.engine, "log_call", count=2)[-1]
    assert job.status == "done"
    description = _task(stack, call)["Description"]
    assert f"Recording: https://assets.aircall.io/calls/{call}/recording" in description
    (fetched,) = steps(stack.engine, "get call")  # one run, one request
    assert fetched.service == "aircall"
    assert fetched.ok


def test_no_fetch_when_the_task_mapping_reads_no_recording(stack: Stack) -> None:
    sf = SalesforceClient(stack.settings)
    mapping = {**fieldmap.DEFAULT_MAPPINGS["Task"], "Description": "notes || =No notes"}
    mapping_store.save_mapping(stack.engine, sf, "Task", mapping, by=MANAGER)
    sf.close()
    agent_id, number_id = _line(stack)
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )["id"]
    stack.company.answer(call, user_id=agent_id)
    stack.company.hangup(call)
    _end_without_the_link(stack, call)
    job = settled(stack.engine, "log_call", count=2)[-1]
    assert job.status == "done"
    assert _task(stack, call)["Description"] == "No notes"
    assert steps(stack.engine, "get call") == []
