"""The lease on a running job, under a database outage and a shared budget shortage: what the
worker keeps, what it gives back, and that a call still gets exactly one Task."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import Engine, make_url
from sqlmodel import Session

from integrations.aircall.emulator import Company
from integrations.loopback import tcp_proxy, wait_for
from integrations.salesforce.emulator import Fault, Org
from integrations.settings import Settings
from integrations.store.models import Job
from integrations.sync.jobs import budget, queue
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.lease import Lease, LeaseLost, current_lease
from integrations.sync.jobs.worker import Worker, make_context
from tests.conftest import WEBHOOK_TOKEN, StackWith, running_stack
from tests.helpers import (
    AGENT_EMAIL,
    answered_inbound_call,
    jobs,
    settled,
    worker_env,
    worker_process,
)

TASK_CREATE = r"/sobjects/Task/?$"
LEASE = 4.0  # seconds; the heartbeat extends it every third of that
SLOW_CREATE = 8.0  # seconds Salesforce takes to take the Task: twice the lease
LEASE_ENV = {
    "JOB_LEASE_SECONDS": str(LEASE),
    "WORKER_CONCURRENCY": "1",
    "SALESFORCE_TIMEOUT_SECONDS": "30",  # the slow create is waited for, not timed out
}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_database_blip_during_a_slow_create_does_not_make_a_second_task(
    settings: Settings, database_url: str, engine: Engine, org: Org, company: Company
) -> None:
    """Worker A reaches the database through a link that is cut while Salesforce takes its time
    to create the Task; worker B waits for any job whose lease runs out. A's heartbeat must
    outlive the cut, so B never takes the job over and the call gets one Task."""
    url = make_url(database_url)
    org.faults.add(Fault(method="POST", path=TASK_CREATE, kind="delay", delay=SLOW_CREATE))
    with (
        tcp_proxy((url.host or "127.0.0.1", url.port or 5432)) as link,
        running_stack(settings, engine, org, company, worker=False) as stack,
    ):
        through_link = url.set(host="127.0.0.1", port=link.port)
        a_env = worker_env(
            settings.model_copy(
                update={"database_url": through_link.render_as_string(hide_password=False)}
            ),
            WEBHOOK_TOKEN,
            **LEASE_ENV,
        )
        with worker_process(a_env):
            agent = company.add_user("Jane Agent", AGENT_EMAIL)
            number = company.add_number("Support line", "+1 212 555 0199")
            call_id = answered_inbound_call(company, number["id"], agent["id"], "+14155550100")
            stack.sender.drain(timeout=10)
            # A has sent the create (the slow fault is taken): now cut A's database link.
            wait_for(lambda: not org.faults.pending(), timeout=20)
            (job,) = jobs(engine, "log_call")
            assert job.status == "running"
            with worker_process(worker_env(settings, WEBHOOK_TOKEN, **LEASE_ENV)):
                link.cut()
                wait_for(lambda: link.refused, timeout=LEASE)  # A's heartbeat met the outage
                link.restore()
                (job,) = settled(engine, "log_call", timeout=SLOW_CREATE + 4 * LEASE)
    (task,) = org.records("Task")
    assert task["CallObject"] == str(call_id)
    assert (job.status, job.attempts) == ("done", 1), job.last_error
    assert job.result["id"] == task["Id"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_with_an_external_id_a_create_in_flight_when_the_lease_ran_out_makes_one_task(
    settings: Settings, database_url: str, engine: Engine, org: Org, company: Company
) -> None:
    """Worker A's database link stays cut until B has taken the job over while A's Task
    upsert is still on its way: B's upsert makes the Task, A's lands on the same one (Salesforce
    refuses only its create-only TaskSubtype), and A, its lease lost, writes nothing more."""
    field = "Aircall_Call_Id__c"
    org.add_field("Task", field, "string", length=32, externalId=True, unique=True)
    org.faults.add(
        Fault(method="PATCH", path=rf"/sobjects/Task/{field}/", kind="delay", delay=SLOW_CREATE)
    )
    url = make_url(database_url)
    env = {**LEASE_ENV, "TASK_EXTERNAL_ID_FIELD": field}
    with (
        tcp_proxy((url.host or "127.0.0.1", url.port or 5432)) as link,
        running_stack(settings, engine, org, company, worker=False) as stack,
    ):
        through_link = url.set(host="127.0.0.1", port=link.port)
        cut_off = settings.model_copy(
            update={"database_url": through_link.render_as_string(hide_password=False)}
        )
        with worker_process(worker_env(cut_off, WEBHOOK_TOKEN, **env)):
            agent = company.add_user("Jane Agent", AGENT_EMAIL)
            number = company.add_number("Support line", "+1 212 555 0199")
            call_id = answered_inbound_call(company, number["id"], agent["id"], "+14155550100")
            stack.sender.drain(timeout=10)
            wait_for(lambda: not org.faults.pending(), timeout=20)  # A's upsert is on its way
            link.cut()
            with worker_process(worker_env(settings, WEBHOOK_TOKEN, **env)):
                wait_for(lambda: jobs(engine, "log_call")[0].attempts == 2, timeout=3 * LEASE)
                link.restore()
                (job,) = settled(engine, "log_call", timeout=SLOW_CREATE + 4 * LEASE)
    (task,) = org.records("Task")
    assert (task["CallObject"], task[field]) == (str(call_id), str(call_id))
    assert job.status == "done"
    assert job.result["id"] == task["Id"]


def test_a_run_whose_job_was_taken_over_writes_nothing_more(
    settings: Settings, engine: Engine, org: Org, company: Company
) -> None:
    """Worker A's lease ran out and B claimed the job: A's next write to either service is
    refused before it is sent, and the job stays B's to settle."""
    with Session(engine) as s:
        queue.enqueue(s, kind="probe", key="probe:1")
        s.commit()
    mine = queue.claim(engine, "worker-a", lease_seconds=0.05)
    assert mine is not None
    taken = wait_for(lambda: queue.claim(engine, "worker-b", lease_seconds=60), timeout=5)
    ctx = make_context(settings, engine)

    async def handler(ctx: Context, job: Job) -> dict[str, Any]:
        await ctx.create("Lead", {"LastName": "Twice", "Company": "X"})
        return {"wrote": True}

    async def scenario() -> None:
        await Worker(ctx, {"probe": handler}).run(mine)  # the Lead create is refused
        lease = Lease(engine, mine, 60.0)
        lease.lost = True  # as the heartbeat leaves it once it finds the job taken
        token = current_lease.set(lease)
        try:
            with pytest.raises(LeaseLost):
                await ctx.aircall.create_contact({"first_name": "Twice", "phone_numbers": []})
        finally:
            current_lease.reset(token)
            await ctx.aircall.aclose()
            ctx.salesforce.close()

    asyncio.run(scenario())
    assert org.records("Lead") == []
    assert company.list_contacts() == []
    (job,) = jobs(engine, "probe")
    assert (job.status, job.worker, job.result) == ("running", "worker-b", None)
    queue.finish(engine, taken, {"by": "b"})
    assert jobs(engine, "probe")[0].result == {"by": "b"}


def test_waiting_for_aircalls_shared_budget_uses_no_attempt(
    stack_with: StackWith, engine: Engine, company: Company
) -> None:
    """With one attempt allowed, a card that must wait for the shared Aircall budget is still
    sent once the budget is back, rather than parked as failed."""
    with stack_with(job_max_attempts=1) as stack:
        agent = company.add_user("Jane Agent", AGENT_EMAIL)
        number = company.add_number("Support line", "+1 212 555 0199")
        budget.block_until(engine, "aircall", time.time() + 2.5)
        call = company.start_call(
            direction="inbound",
            external="+14155550100",
            number_id=number["id"],
            user_id=agent["id"],
        )
        company.answer(call["id"], user_id=agent["id"])
        stack.sender.drain(timeout=10)
        wait_for(lambda: company.insight_cards, timeout=15)
        (job,) = settled(engine, "insight_card")
    assert (job.status, job.attempts) == ("done", 1)
    (card,) = company.insight_cards
    assert card["call_id"] == call["id"]
