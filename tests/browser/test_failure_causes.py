"""Review groups failed calls by cause, in plain words, with where to fix it and one re-sync."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlmodel import Session, select

from integrations.loopback import wait_for
from integrations.salesforce.emulator import Fault
from integrations.store.models import Job
from integrations.sync.automations import builder
from tests.browser.test_screens import MANAGER, Opener, people
from tests.conftest import Stack, StackWith
from tests.helpers import settled

CALLER = "+14155550100"


def test_a_required_field_fails_two_calls_as_one_cause_fixed_once(
    stack: Stack, open_screen: Opener
) -> None:
    agent_id, number_id = people(stack)
    # The admin made a custom Task field required: every call's Task is refused.
    stack.org.add_field("Task", "Region__c", "string", nillable=False)
    for _ in range(2):
        call = stack.company.start_call(
            direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
        )
        stack.company.hangup(call["id"])
        stack.company.end(call["id"])
    stack.sender.drain(timeout=20)
    assert {job.status for job in settled(stack.engine, "log_call", count=2)} == {"failed"}

    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    screen.go("/review?status=failed")
    causes = screen.page.locator("#failure-causes li.cause")
    expect(causes).to_have_count(1)
    cause = causes.first
    expect(cause.locator(".headline")).to_have_text("a required field is missing: Region__c")
    expect(cause.locator(".cause-count")).to_have_text("2 calls")
    expect(cause).to_contain_text("Map a value to Region__c in the field mapping of Task")
    expect(cause.locator(".badge.code")).to_have_text("REQUIRED_FIELD_MISSING")
    screen.screenshot("review_causes")

    # The automation that logs calls says it too, at a glance.
    screen.go("/automations")
    shipped = {a.builtin: a.id for a in builder.summaries(stack.engine) if a.builtin}
    row = screen.page.locator(f"#automation-{shipped['E12_log_call']}")
    expect(row.locator(".runs-today")).to_have_text("2 2 failed")
    expect(row.locator(".last-run")).to_contain_text(
        "Last error: a required field is missing: Region__c"
    )
    screen.screenshot("automations")
    screen.go("/review?status=failed")

    cause.get_by_role("link", name="Show these calls").click()
    expect(screen.page.locator("p.count")).to_have_text("2 calls")
    expect(screen.page.locator("#cause-filter")).to_contain_text("Region__c")

    # The fix, where the cause says: the Task field mapping.
    screen.page.locator("#failure-causes").get_by_role(
        "link", name="Open the Task field mapping"
    ).click()
    rows = screen.page.locator("#mapping-form tbody tr")
    rows.last.get_by_label("Field").fill("Region__c")
    rows.last.get_by_label("Value").fill("=West")
    screen.page.get_by_role("button", name="Check and save").click()
    expect(screen.page.locator("#saved")).to_be_visible()
    assert stack.org.records("Task") == []

    screen.go("/review?status=failed")
    screen.page.get_by_role("button", name="Re-sync these 2 calls").click()
    expect(screen.page.locator("#resync-progress")).to_contain_text(
        "Re-sync finished: 2 of 2 done, 0 failed", timeout=30_000
    )
    expect(screen.page.locator("#failure-causes")).to_have_count(0)
    tasks = stack.org.records("Task")
    assert [task["Region__c"] for task in tasks] == ["West", "West"]
    assert len({task["CallObject"] for task in tasks}) == 2


def test_a_retrying_task_says_so_with_its_next_try_and_why(
    stack_with: StackWith, open_screen: Opener
) -> None:
    with stack_with(retry_base_seconds=600.0) as stack:  # the next try is minutes away
        agent_id, number_id = people(stack)
        locked = [
            {
                "message": "unable to obtain exclusive access to this record or 1 records",
                "errorCode": "UNABLE_TO_LOCK_ROW",
                "fields": [],
            }
        ]
        stack.org.faults.add(
            Fault(method="POST", path=r"/sobjects(/Task)?/?$", status=400, body=locked, times=1)
        )
        call = stack.company.start_call(
            direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
        )
        stack.company.hangup(call["id"])
        stack.company.end(call["id"])
        stack.sender.drain(timeout=20)
        wait_for(lambda: _retrying(stack), timeout=20)

        screen = open_screen(stack.app.url)
        screen.sign_in(MANAGER)
        screen.go(f"/calls/{call['id']}")
        job = screen.page.locator("#call-jobs tr.job")
        expect(job.locator(".badge.state")).to_have_text("retrying")
        expect(job.locator(".retry")).to_contain_text("next try")
        expect(job.locator(".why")).to_have_text("the record was locked")
        screen.screenshot("call_retrying")


def _retrying(stack: Stack) -> bool:
    with Session(stack.engine) as s:
        job = s.exec(select(Job).where(Job.kind == "log_call")).first()
    return job is not None and job.status == "queued" and job.attempts == 1
