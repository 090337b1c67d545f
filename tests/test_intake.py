"""The webhook intake: a batch of deliveries ends as if accepted one by one; the receiver's group
commit answers each request only after its event is committed; the shipped automations, when
disabled, stop the call jobs they stand for."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from integrations.aircall.emulator import Company
from integrations.aircall.events import WebhookEvent, parse
from integrations.store.automation_models import Automation
from integrations.store.models import Call, Event, Job
from integrations.sync.automations import definitions
from integrations.sync.intake import deliveries as intake
from integrations.sync.intake.writer import IntakeWriter
from integrations.sync.jobs import kinds
from integrations.sync.runtime import prepare
from tests.conftest import WEBHOOK_TOKEN, Stack
from tests.helpers import AGENT_EMAIL, answered_inbound_call, jobs, settled


def _deliveries(company: Company, calls: int = 1, *, register: bool = True) -> list[bytes]:
    """Whole call lives as the Aircall emulator delivers them (created ... ended)."""
    agent = company.add_user("Jane Agent", AGENT_EMAIL)
    line = company.add_number("Support line", "+1 212 555 0199")
    if register:  # a running stack has its webhook already
        company.add_webhook("http://127.0.0.1:9/webhooks/aircall", token=WEBHOOK_TOKEN)
    for n in range(calls):
        answered_inbound_call(company, line["id"], agent["id"], f"+1415555{100 + n:04d}")
    return [json.dumps(d["envelope"]).encode() for d in company.deliveries]


def _events(bodies: list[bytes]) -> list[WebhookEvent]:
    return [parse(body, [SecretStr(WEBHOOK_TOKEN)]) for body in bodies]


def _state(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    with Session(engine) as s:
        calls = [
            (c.status, c.ended, c.e164, c.snapshot["status"])
            for c in s.exec(select(Call).order_by(Call.id))
        ]
        queued = [(j.kind, j.status, j.priority) for j in s.exec(select(Job).order_by(Job.id))]
        stored = s.exec(select(func.count()).select_from(Event)).one()
    return calls, queued, stored


@pytest.fixture
def prepared(engine: Engine) -> Engine:
    prepare(engine)
    return engine


def test_a_batch_with_retries_and_unordered_deliveries_stores_each_once(
    prepared: Engine, company: Company
):
    bodies = _deliveries(company, calls=2)
    deliveries = _events(bodies)
    # Unordered, with Aircall's retries: the last delivery first, one twice in the batch.
    batch = [deliveries[-1], *deliveries, deliveries[2]]
    accepted = intake.accept_many(prepared, batch)
    assert accepted == [True] + [True] * (len(deliveries) - 1) + [False, False]
    batched = _state(prepared)
    calls, queued, stored = batched
    assert stored == len(deliveries)
    assert calls == [
        ("done", True, "+14155550100", "done"),
        ("done", True, "+14155550101", "done"),
    ]
    # One unfinished Task sync per call, whatever the number of events that asked for it.
    assert sorted(k for k, *_ in queued).count(kinds.LOG_CALL) == 2
    # Sent again, all of it: stored and acted on once.
    assert intake.accept_many(prepared, deliveries) == [False] * len(deliveries)
    assert _state(prepared) == batched


def test_a_batch_keeps_the_latest_not_before_of_the_call_task(prepared: Engine, company: Company):
    deliveries = _events(_deliveries(company))
    intake.accept_many(prepared, deliveries, log_delay=30.0)
    (job,) = jobs(prepared, kinds.LOG_CALL)
    assert job.run_at - job.created_at == pytest.approx(30.0, abs=1.0)


def test_the_writer_answers_after_the_commit_and_isolates_a_failing_delivery(
    prepared: Engine, company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliveries = _events(_deliveries(company, calls=4))
    poison = deliveries[5]
    real = intake.accept_many

    def failing(engine: Engine, events: list[WebhookEvent], **kwargs: Any) -> list[bool]:
        if poison in events:
            raise RuntimeError("disk full")
        return real(engine, events, **kwargs)

    monkeypatch.setattr(intake, "accept_many", failing)
    writer = IntakeWriter(prepared)

    async def send_all() -> list[Any]:
        return await asyncio.gather(
            *(writer.accept(event) for event in deliveries), return_exceptions=True
        )

    try:
        outcomes = asyncio.run(send_all())
    finally:
        writer.stop()
    assert [type(o).__name__ for o in outcomes].count("RuntimeError") == 1
    assert isinstance(outcomes[5], RuntimeError)
    with Session(prepared) as s:
        keys = set(s.exec(select(Event.delivery_key)))
    assert keys == {e.delivery_key for e in deliveries} - {poison.delivery_key}


def test_concurrent_webhooks_are_each_committed_before_their_200(stack: Stack) -> None:
    bodies = _deliveries(stack.company, calls=20, register=False)

    async def post_all() -> list[int]:
        async with httpx.AsyncClient(base_url=stack.app.url, timeout=30) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/webhooks/aircall",
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    for body in bodies
                )
            )
        return [a.status_code for a in answers]

    statuses = asyncio.run(post_all())
    # No waiting here: every 200 means committed.
    with Session(stack.engine) as s:
        stored = s.exec(select(func.count()).select_from(Event)).one()
    assert statuses == [200] * len(bodies)
    assert stored == len(bodies)


def _set_default(engine: Engine, builtin: str, enabled: bool) -> None:
    with Session(engine) as s:
        automation_id = s.exec(select(Automation.id).where(Automation.builtin == builtin)).one()
    definitions.set_enabled(engine, automation_id, enabled, by="manager@example.com")


def test_disabling_the_shipped_automations_stops_their_jobs(stack: Stack) -> None:
    _set_default(stack.engine, "E12_log_call", False)
    _set_default(stack.engine, "E08_comment_on_task", False)
    _set_default(stack.engine, "E04_insight_card", False)
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    line = stack.company.add_number("Support line", "+1 212 555 0199")
    call = stack.company.start_call(
        direction="inbound", external="+14155550100", number_id=line["id"], user_id=agent["id"]
    )
    stack.company.answer(call["id"], user_id=agent["id"])
    stack.company.comment(call["id"], "Call me back", user_id=agent["id"])
    stack.company.hangup(call["id"])
    stack.company.end(call["id"])
    stack.sender.drain(timeout=10)
    with Session(stack.engine) as s:
        assert s.exec(select(func.count()).select_from(Event)).one() >= 5
    assert jobs(stack.engine, kinds.LOG_CALL) == []
    assert jobs(stack.engine, kinds.INSIGHT_CARD) == []
    assert stack.org.records("Task") == []
    assert stack.company.snapshot()["insight_cards"] == []

    # Enabled again, the next call is logged and gets its card.
    _set_default(stack.engine, "E12_log_call", True)
    _set_default(stack.engine, "E04_insight_card", True)
    call = stack.company.start_call(
        direction="inbound", external="+14155550101", number_id=line["id"], user_id=agent["id"]
    )
    stack.company.answer(call["id"], user_id=agent["id"])
    stack.sender.drain(timeout=10)
    settled(stack.engine, kinds.INSIGHT_CARD)
    assert len(stack.company.snapshot()["insight_cards"]) == 1
    stack.company.hangup(call["id"])
    stack.company.end(call["id"])
    stack.sender.drain(timeout=10)
    settled(stack.engine, kinds.LOG_CALL)
    assert len(stack.org.records("Task")) == 1


def test_a_condition_on_the_call_task_automation_is_honoured(stack: Stack) -> None:
    with Session(stack.engine) as s:
        automation_id = s.exec(
            select(Automation.id).where(Automation.builtin == "E12_log_call")
        ).one()
    current = definitions.definition(stack.engine, automation_id)
    current["conditions"] = {"direction": "outbound"}
    definitions.save(stack.engine, current, by="manager@example.com", automation_id=automation_id)
    _set_default(stack.engine, "E08_comment_on_task", False)
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    line = stack.company.add_number("Support line", "+1 212 555 0199")
    answered_inbound_call(stack.company, line["id"], agent["id"], "+14155550100")
    stack.sender.drain(timeout=10)
    assert jobs(stack.engine, kinds.LOG_CALL) == []
    assert stack.org.records("Task") == []


def test_stored_payloads_and_snapshots_read_back_as_delivered(
    prepared: Engine, company: Company
) -> None:
    """Each delivery is serialised once while parsed (``data_json``) and written as it is: the
    stored envelope (without the token) and the call's snapshot read back equal to the parsed
    ones, and the delivery key is still the hash of the canonical JSON of earlier versions."""
    bodies = _deliveries(company)
    deliveries = _events(bodies)
    intake.accept_many(prepared, deliveries)
    with Session(prepared) as s:
        stored = {e.delivery_key: e.payload for e in s.exec(select(Event))}
        (call,) = s.exec(select(Call)).all()
    for body, event in zip(bodies, deliveries, strict=True):
        envelope = json.loads(body)
        del envelope["token"]
        assert stored[event.delivery_key] == envelope
        canonical = json.dumps(
            {k: envelope[k] for k in ("event", "timestamp", "data")},
            sort_keys=True,
            separators=(",", ":"),
        )
        assert event.delivery_key == hashlib.sha256(canonical.encode()).hexdigest()
    assert call.snapshot == deliveries[-1].data


def test_a_later_batch_with_an_older_snapshot_keeps_the_stored_one(
    prepared: Engine, company: Company
) -> None:
    """The stored snapshot is read back only when it beat the batch's: the call stays as its
    newest delivery left it, and the older event still asks for the call's Task."""
    deliveries = _events(_deliveries(company))
    ended = next(e for e in deliveries if e.event == "call.ended")
    answered = next(e for e in deliveries if e.event == "call.answered")
    intake.accept_many(prepared, [ended])
    with Session(prepared) as s:
        for job in s.exec(select(Job)):
            job.status = "done"  # the Task is written: a new job shows the later event asked
            s.add(job)
        s.commit()
    assert intake.accept_many(prepared, [answered]) == [True]
    with Session(prepared) as s:
        (call,) = s.exec(select(Call)).all()
        queued = s.exec(select(Job).where(Job.status == "queued", Job.kind == kinds.LOG_CALL))
        assert len(queued.all()) == 1
    assert (call.status, call.ended, call.snapshot) == ("done", True, ended.data)
