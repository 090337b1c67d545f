"""The Aircall webhook managed by Callbridge: registered at PUBLIC_URL with the events it needs,
its token accepted without AIRCALL_WEBHOOK_TOKENS, read back, repaired, and registered by
``callbridge register-webhook`` once however often it runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from integrations.aircall.emulator import Company, WebhookSender
from integrations.aircall.emulator import create_app as create_emulator
from integrations.errors import NotConfigured
from integrations.loopback import serve, tcp_proxy, wait_for
from integrations.salesforce.emulator import Org
from integrations.secrets import new_key
from integrations.store import accounts, connections
from integrations.sync.connect import aircall
from integrations.sync.recovery import backfill
from tests.conftest import SettingsWith, Stack
from tests.helpers import AGENT_EMAIL, answered_inbound_call
from tests.signin import PASSWORD, sign_in
from tests.test_health import doctor
from web.app import create_app

SECRET_KEY = new_key()
MANAGER = "sam@example.com"


class Behind:
    """Aircall's clock, set back so a call of the test ended long enough ago to backfill."""

    seconds = 0.0

    def now(self) -> float:
        return time.time() - self.seconds


@pytest.fixture
def behind() -> Behind:
    return Behind()


@pytest.fixture
def company(behind: Behind) -> Company:
    """Callbridge is served over plain http on loopback here: let Aircall's API accept it."""
    return Company(loopback_http_webhooks=True, clock=behind.now)


@contextmanager
def managed_stack(
    settings_with: SettingsWith,
    engine: Engine,
    org: Org,
    company: Company,
    *,
    worker: bool = True,
    **extra: object,
) -> Iterator[Stack]:
    """The stack with no webhook made by hand and no AIRCALL_WEBHOOK_TOKENS: Callbridge
    registers its own. PUBLIC_URL is the app's address, known once it listens. A failing
    delivery is given up when it disables the webhook, so only a repair re-enables it."""
    values: dict[str, object] = {
        "aircall_webhook_tokens": [],
        "callbridge_secret_key": SecretStr(SECRET_KEY),
        **extra,
    }
    settings = settings_with(**values)
    with serve(create_app(settings, engine=engine, worker=worker)) as app:
        settings.public_url = app.url
        # Aircall's (the emulator's default) 10 failures disable the webhook; given up there.
        sender = WebhookSender(company, base_delay=0.01, max_delay=0.05, max_attempts=10)
        sender.start()
        try:
            yield Stack(app, settings, engine, org, company, sender)
        finally:
            sender.stop()


def people(stack: Stack) -> tuple[int, int]:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    stack.org.add_user("Jane Agent", AGENT_EMAIL)
    return agent["id"], number["id"]


def a_call_becomes_a_task(stack: Stack, agent_id: int, number_id: int) -> None:
    before = len(stack.org.records("Task"))
    call_id = answered_inbound_call(stack.company, number_id, agent_id, "+14155550100")
    wait_for(lambda: len(stack.org.records("Task")) > before, timeout=20)
    assert stack.org.records("Task")[-1]["CallObject"] == str(call_id)


def test_registered_webhook_has_the_needed_events_and_its_token_is_accepted(
    settings_with: SettingsWith, engine: Engine, org: Org, company: Company
) -> None:
    with managed_stack(settings_with, engine, org, company) as stack:
        agent_id, number_id = people(stack)
        asyncio.run(aircall.register(stack.settings, engine, by="test"))

        (hook,) = company.webhooks.values()
        assert hook["url"] == f"{stack.app.url}/webhooks/aircall"
        assert hook["active"] is True
        # The intake's call events and the default automations' triggers (contact.created: E13)
        assert {"call.created", "call.answered", "call.ended", "call.tagged"} <= set(hook["events"])
        assert "contact.created" in hook["events"]
        assert "user.created" not in hook["events"]
        stored = connections.details(engine, connections.AIRCALL_WEBHOOK)
        assert stored["webhook_id"] == hook["webhook_id"]
        assert hook["token"] not in str(stored)

        a_call_becomes_a_task(stack, agent_id, number_id)
        assert all(d["delivered"] for d in company.deliveries)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no store code
def test_without_public_url_nothing_is_registered_and_the_button_says_why(
    settings_with: SettingsWith, engine: Engine, org: Org, company: Company
) -> None:
    with managed_stack(settings_with, engine, org, company) as stack:
        stack.settings.public_url = ""
        with pytest.raises(NotConfigured, match="PUBLIC_URL is not set"):
            asyncio.run(aircall.register(stack.settings, engine))
        assert company.webhooks == {}
        accounts.add_user(engine, MANAGER, "manager", PASSWORD)
        page = sign_in(stack.app.url, MANAGER).client.get("/settings/connections").text
        assert '<button type="submit" disabled>Register webhook</button>' in page
        assert "PUBLIC_URL is not set" in page


def test_a_disabled_webhook_is_reported_and_repair_reenables_it(
    settings_with: SettingsWith, engine: Engine, org: Org, company: Company, behind: Behind
) -> None:
    with (
        managed_stack(
            settings_with, engine, org, company, aircall_webhook_check_seconds=0.2
        ) as stack,
        tcp_proxy((stack.app.host, stack.app.port)) as link,
    ):
        agent_id, number_id = people(stack)
        stack.settings.public_url = f"http://127.0.0.1:{link.port}"
        asyncio.run(aircall.register(stack.settings, engine))
        (webhook_id,) = company.webhooks

        link.cut()  # Callbridge unreachable: Aircall's deliveries fail until it gives up
        behind.seconds = backfill.SETTLE_SECONDS + 60  # the missed call ended a while ago
        missed = answered_inbound_call(company, number_id, agent_id, "+14155550100")
        behind.seconds = 0.0
        stack.sender.drain(timeout=20)  # every delivery given up: none re-enables it
        assert company.webhooks[webhook_id]["active"] is False

        # The worker's read-back notices within its interval and says so in plain words.
        problem = wait_for(lambda: aircall.webhook_problem(engine), timeout=10)
        assert "Aircall has disabled the webhook" in problem
        assert "Repair" in problem
        found = doctor(stack.settings)  # the same read-back, from the command line
        assert found.returncode == 1, found.stdout + found.stderr
        assert any(
            line.startswith("PROBLEM  Aircall webhook: Aircall has disabled the webhook")
            for line in found.stdout.splitlines()
        ), found.stdout

        link.restore()
        accounts.add_user(engine, MANAGER, "manager", PASSWORD)
        manager = sign_in(stack.app.url, MANAGER)
        page = manager.client.get("/settings/connections").text
        assert "Aircall has disabled the webhook" in page
        assert ">Repair</button>" in page
        health = manager.client.get("/settings/health").text  # read back again, on the page
        assert "Aircall has disabled the webhook" in health

        answer = manager.client.post(
            "/settings/connections/aircall/webhook", data={"csrf_token": manager.csrf}
        )
        assert answer.status_code == 303
        assert company.webhooks[webhook_id]["active"] is True
        assert company.webhooks[webhook_id]["events"] == aircall.needed_events(engine)
        assert aircall.webhook_problem(engine) is None
        page = manager.client.get("/settings/connections").text
        assert "Backfill these calls" in page  # the gap is offered

        # The backfill of the gap logs the call Aircall never delivered.
        gap = aircall.gap(engine)
        answer = manager.client.post(
            "/settings/backfill",
            data={"csrf_token": manager.csrf, "next": "/settings/connections", **gap},
        )
        assert answer.status_code == 303
        (task,) = wait_for(lambda: org.records("Task"), timeout=20)
        assert task["CallObject"] == str(missed)
        a_call_becomes_a_task(stack, agent_id, number_id)  # and new calls arrive again


def test_read_back_reports_a_webhook_that_is_gone_or_lacks_events(
    settings_with: SettingsWith, engine: Engine, org: Org, company: Company
) -> None:
    with managed_stack(settings_with, engine, org, company, worker=False) as stack:
        asyncio.run(aircall.register(stack.settings, engine))
        (webhook_id,) = company.webhooks
        company.update_webhook(webhook_id, {"events": ["call.created"]})
        asyncio.run(_check(stack))
        assert "does not send call.answered" in aircall.webhook_problem(engine)

        company.delete_webhook(webhook_id)
        asyncio.run(_check(stack))
        assert "is gone" in aircall.webhook_problem(engine)

        asyncio.run(aircall.register(stack.settings, engine))  # repair makes a new one
        assert len(company.webhooks) == 1
        assert aircall.webhook_problem(engine) is None


async def _check(stack: Stack) -> None:
    client = aircall._client(stack.settings, stack.engine)
    try:
        await aircall.check(stack.settings, stack.engine, client)
    finally:
        await client.aclose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no store code
def test_register_webhook_command_registers_once(
    settings_with: SettingsWith, engine: Engine, org: Org, company: Company
) -> None:
    with managed_stack(settings_with, engine, org, company, worker=False) as stack:
        settings = stack.settings
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": settings.database_url,
            "CALLBRIDGE_SECRET_KEY": SECRET_KEY,
            "PUBLIC_URL": settings.public_url,
            "AIRCALL_API_URL": settings.aircall_api_url,
            "AIRCALL_API_ID": settings.aircall_api_id,
            "AIRCALL_API_TOKEN": settings.aircall_api_token.get_secret_value(),
        }
        outputs = []
        for _ in range(2):
            result = subprocess.run(
                [sys.executable, "-m", "web.cli", "register-webhook"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout)
        (hook,) = company.webhooks.values()
        assert f"webhook {hook['webhook_id']} sends" in outputs[1]
        assert hook["events"] == aircall.needed_events(engine)
        assert hook["token"] not in outputs[0] + outputs[1]


def test_aircall_refuses_a_plain_http_webhook_unless_told_otherwise() -> None:
    """Real Aircall wants https; only the tests' and demo's emulator takes loopback http."""
    strict = Company()
    with serve(create_emulator(strict)) as api:
        auth = (strict.api_id, strict.api_token)
        body = {"url": "http://127.0.0.1:8000/webhooks/aircall", "events": ["call.ended"]}
        answer = httpx.post(f"{api.url}/v1/webhooks", json=body, auth=auth, timeout=10)
        assert answer.status_code == 400
        assert strict.webhooks == {}
