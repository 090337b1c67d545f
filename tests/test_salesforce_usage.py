"""Salesforce's daily API allocation: requests counted per call, and bulk work held back."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import Session, select

from integrations.loopback import Running, wait_for
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Org
from integrations.settings import Settings
from integrations.store.models import ApiUsage, Call, Job
from integrations.sync.jobs import kinds
from tests.conftest import SettingsWith, Stack, StackWith, make_settings
from tests.helpers import AGENT_EMAIL, answered_inbound_call, jobs, settled, steps


def _requests_by_call(stack: Stack) -> dict[int, int]:
    with Session(stack.engine) as s:
        return {call.id: call.sf_requests for call in s.exec(select(Call).order_by(Call.id))}


@pytest.fixture
def settings(settings_with: SettingsWith) -> Settings:
    # Logged once the call has ended: the mode whose cost is one request per call.
    return settings_with(task_logged_at="end")


def test_a_known_caller_costs_one_request_per_logged_call(stack: Stack) -> None:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    stack.org.add_user("Jane Agent", AGENT_EMAIL)
    stack.org.insert("Contact", {"LastName": "Jennings", "Phone": "+14155550100"})
    used_before = stack.org.api_used
    for _ in range(4):
        # A call as it happens: the card is shown while it rings on; then it ends and is logged.
        call = stack.company.start_call(
            direction="inbound",
            external="+14155550100",
            number_id=number["id"],
            user_id=agent["id"],
        )
        stack.company.answer(call["id"], user_id=agent["id"])
        stack.sender.drain(timeout=10)
        settled(stack.engine, "insight_card")
        stack.company.hangup(call["id"])
        stack.company.end(call["id"])
        stack.sender.drain(timeout=10)
        settled(stack.engine, "log_call")
    spent = list(_requests_by_call(stack).values())
    # First call: search the caller and read its context for the card, then find the agent's
    # User, read the org's time zone and create the Task. Later calls: the Task create alone.
    assert spent[1:] == [1, 1, 1]
    assert spent[0] <= 6
    assert stack.org.api_used - used_before == sum(spent)
    assert len(stack.org.records("Task")) == 4
    with Session(stack.engine) as s:
        usage = s.get(ApiUsage, "salesforce")
        assert (usage.used, usage.max) == (stack.org.api_used, stack.org.api_max)


def test_a_comment_right_after_the_call_ended_rides_along_in_the_create(
    stack_with: StackWith,
) -> None:
    with stack_with(task_log_delay_seconds=3.0) as stack:
        agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
        number = stack.company.add_number("Support line", "+1 212 555 0199")
        call_id = answered_inbound_call(stack.company, number["id"], agent["id"], "+14155550100")
        stack.company.comment(call_id, "Send the brochure", user_id=agent["id"])
        stack.sender.drain(timeout=10)
        wait_for(lambda: stack.org.records("Task"), timeout=10)
        settled(stack.engine, "log_call")
        (task,) = stack.org.records("Task")
        assert "Send the brochure" in task["Description"]
        assert steps(stack.engine, "update Task") == []  # one request: the create


def test_bulk_work_waits_while_the_org_is_near_its_daily_limit(stack: Stack) -> None:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    stack.org.api_used = int(stack.org.api_max * 0.95)
    answered_inbound_call(stack.company, number["id"], agent["id"], "+14155550100")
    stack.sender.drain(timeout=10)
    logged = settled(stack.engine, "log_call")[-1]  # live work still runs
    assert logged.status == "done"
    with Session(stack.engine) as s:
        s.add(
            Job(
                kind="log_call",
                dedupe_key="bulk:1",
                call_id=logged.call_id,
                priority=kinds.BULK,
                run_at=0.0,
                created_at=0.0,
            )
        )
        s.commit()

    def bulk() -> Job:
        return next(j for j in jobs(stack.engine) if j.dedupe_key == "bulk:1")

    answered_inbound_call(stack.company, number["id"], agent["id"], "+14155550101")
    stack.sender.drain(timeout=10)
    wait_for(lambda: len(stack.org.records("Task")) == 2, timeout=10)
    assert bulk().status == "queued"
    stack.org.api_used = 0  # the rolling window moved on
    answered_inbound_call(stack.company, number["id"], agent["id"], "+14155550102")
    stack.sender.drain(timeout=10)
    wait_for(lambda: bulk().status == "done", timeout=10)
    wait_for(lambda: len(stack.org.records("Task")) == 3, timeout=10)
    settled(stack.engine, "log_call")
    assert len(stack.org.records("Task")) == 3  # the re-sync made no duplicate


def test_jwt_bearer_flow_reaches_the_data_api(
    tmp_path: Path, tls: tuple[str, str, str], aircall: Running, sqlite_url: str
) -> None:
    from integrations.loopback import serve
    from integrations.salesforce.emulator import create_app

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    org = Org(jwt_public_key_pem=public, jwt_username="integration@acme.example")
    _ca, cert, keyfile = tls
    with serve(create_app(org), ssl_certfile=cert, ssl_keyfile=keyfile, url_host="localhost") as sf:
        settings = make_settings(
            sf,
            aircall,
            org,
            sqlite_url,
            salesforce_username="integration@acme.example",
            salesforce_private_key_file=pem,
        )
        assert settings.salesforce_auth_flow == "jwt"
        client = SalesforceClient(settings)
        record_id = client.create("Contact", {"LastName": "Jwt"})
        assert org.get("Contact", record_id)["LastName"] == "Jwt"
        client.close()
