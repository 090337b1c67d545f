"""Aircall's API key entered on the Connections page: checked with Aircall before it is stored,
stored sealed, used by the running worker without a restart, never shown back or logged; the
environment's key wins."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import SQLModel

from integrations.aircall import credentials
from integrations.aircall.emulator import Company
from integrations.errors import BadInput
from integrations.loopback import wait_for
from integrations.salesforce.emulator import Org
from integrations.secrets import NO_KEY, new_key
from integrations.settings import Settings
from integrations.store import accounts, connections
from integrations.sync.connect import aircall
from tests.conftest import SettingsWith
from tests.signin import PASSWORD, SignedIn, sign_in
from tests.test_webhook_registration import managed_stack, people

API_ID = "4f1c2a9e"
API_TOKEN = "5ec12e7a0a7c4e1b9d3f6a8b2c4d6e8f"
MANAGER = "sam@example.com"
NO_KEY_FOR_ENV: dict[str, object] = {"aircall_api_id": "", "aircall_api_token": SecretStr("")}


@pytest.fixture
def company() -> Company:
    return Company(api_id=API_ID, api_token=API_TOKEN, loopback_http_webhooks=True)


def manager(base_url: str, engine: Engine) -> SignedIn:
    accounts.add_user(engine, MANAGER, "manager", PASSWORD)
    return sign_in(base_url, MANAGER)


def enter_key(signed_in: SignedIn, api_id: str, api_token: str) -> str:
    """Post the form as the page does; the page it redirects to."""
    answer = signed_in.client.post(
        "/settings/connections/aircall",
        data={"csrf_token": signed_in.csrf, "api_id": api_id, "api_token": api_token},
        follow_redirects=True,
    )
    assert answer.status_code == 200
    return answer.text


def database_text(engine: Engine, database_url: str) -> str:
    """Every row of every table, and for SQLite the raw bytes of its files too."""
    parts = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            parts.extend(str(tuple(row)) for row in conn.execute(table.select()))
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        for file in path.parent.glob(path.name + "*"):
            parts.append(file.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def test_a_key_is_checked_then_stored_sealed_and_used_without_a_restart(
    settings_with: SettingsWith,
    engine: Engine,
    org: Org,
    company: Company,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with managed_stack(settings_with, engine, org, company, **NO_KEY_FOR_ENV) as stack:
        agent_id, number_id = people(stack)
        signed_in = manager(stack.app.url, engine)

        page = enter_key(signed_in, API_ID, "0" * 32)
        assert "Aircall refused this API ID and token" in page
        assert "Integrations &amp; API → API keys" in page
        assert f'value="{API_ID}"' in page  # what was typed is kept, the token is not
        assert connections.details(engine, connections.AIRCALL) is None

        page = enter_key(signed_in, API_ID, API_TOKEN)
        assert "Aircall is connected" in page
        assert re.search(rf"Connected with the API ID <code>{API_ID}</code>", page)
        assert connections.details(engine, connections.AIRCALL) == {"api_id": API_ID}

        answer = signed_in.client.post(
            "/settings/connections/aircall/webhook", data={"csrf_token": signed_in.csrf}
        )
        assert answer.status_code == 303
        (hook,) = company.webhooks.values()  # its token is the one deliveries now carry

        # Delivered with the registered token; the running worker's client uses the stored
        # key: the insight card reaches Aircall.
        call = company.start_call(
            direction="inbound", external="+14155550100", number_id=number_id, user_id=agent_id
        )
        company.answer(call["id"], user_id=agent_id)
        call_id = call["id"]
        (card,) = wait_for(lambda: company.insight_cards, timeout=20)
        assert card["call_id"] == call_id

        pages = signed_in.client.get("/settings/connections").text
        stored = database_text(engine, database_url)
        logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
        for secret in (API_TOKEN, hook["token"]):
            assert secret not in pages
            assert secret not in stored
            assert secret not in logged


def test_without_a_secret_key_nothing_is_stored_and_aircall_is_not_asked(
    settings_with: SettingsWith, engine: Engine, org: Org, company: Company
) -> None:
    extra = {**NO_KEY_FOR_ENV, "callbridge_secret_key": SecretStr("")}
    with managed_stack(settings_with, engine, org, company, worker=False, **extra) as stack:
        signed_in = manager(stack.app.url, engine)
        asked = company.requests_made
        page = enter_key(signed_in, API_ID, API_TOKEN)
        assert NO_KEY in page.replace("&#39;", "'").replace("&#96;", "`")
        assert 'id="aircall-key-form"' not in page
        assert connections.details(engine, connections.AIRCALL) is None
        assert company.requests_made == asked

        accounts.add_user(engine, "maya@example.com", "agent", PASSWORD)
        agent = sign_in(stack.app.url, "maya@example.com")
        answer = agent.client.post(
            "/settings/connections/aircall",
            data={"csrf_token": agent.csrf, "api_id": API_ID, "api_token": API_TOKEN},
        )
        assert answer.status_code == 403


def test_the_environment_key_wins_over_the_stored_one(engine: Engine) -> None:
    box_key = SecretStr(new_key())
    stored_only = Settings(_env_file=None, callbridge_secret_key=box_key)
    credentials.save_key(stored_only, engine, API_ID, API_TOKEN)
    assert credentials.api_key(stored_only, engine) == (API_ID, API_TOKEN)
    with_env = Settings(
        _env_file=None,
        callbridge_secret_key=box_key,
        aircall_api_id="env-id",
        aircall_api_token=SecretStr("env-token"),
    )
    assert credentials.api_key(with_env, engine) == ("env-id", "env-token")


def test_blank_fields_are_refused_before_anything_is_sent(engine: Engine) -> None:
    settings = Settings(_env_file=None, callbridge_secret_key=SecretStr(new_key()))
    with pytest.raises(BadInput, match="Enter both the API ID and the API token"):
        asyncio.run(aircall.connect_key(settings, engine, API_ID, "  "))
    assert connections.details(engine, connections.AIRCALL) is None
