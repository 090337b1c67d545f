"""Hostile deliveries against the running receiver: a clean 4xx, never a 5xx, and nothing
stored without a valid token."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from integrations.loopback import serve
from integrations.settings import Settings
from integrations.store.models import Event
from tests.conftest import WEBHOOK_TOKEN

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=8,
)
call = st.fixed_dictionaries(
    {
        "id": st.integers(min_value=-5, max_value=2**64),
        "direction": st.sampled_from(["inbound", "outbound", "", "INBOUND"]) | json_values,
        "status": st.sampled_from(["initial", "answered", "done"]) | json_values,
        "raw_digits": st.text(max_size=40) | json_values,
        "started_at": st.integers(min_value=-1, max_value=2**60) | json_values,
        "duration": st.integers(min_value=-1, max_value=2**40),
        "user": st.fixed_dictionaries({"email": st.text(max_size=300)}) | json_values,
        "tags": st.lists(st.fixed_dictionaries({"name": st.text(max_size=30)}), max_size=3),
    }
)
envelopes = st.fixed_dictionaries(
    {
        "resource": st.sampled_from(["call", "contact"]) | st.text(max_size=10),
        "event": st.sampled_from(["call.ended", "call.tagged", "contact.created"])
        | st.text(max_size=20),
        "timestamp": st.integers(min_value=-1, max_value=2**62) | json_values,
        "token": st.sampled_from([WEBHOOK_TOKEN, "0" * 32, ""]),
        "data": call | json_values,
    }
)


@pytest.fixture
def receiver(database_url: str, engine: Engine) -> Iterator[tuple[httpx.Client, Engine]]:
    from web.app import create_app

    app_settings = Settings(
        _env_file=None,
        database_url=database_url,
        aircall_webhook_tokens=[SecretStr(WEBHOOK_TOKEN)],
    )
    app = create_app(app_settings, engine=engine, worker=False)
    with serve(app) as running, httpx.Client(base_url=running.url, timeout=10) as client:
        yield client, engine


def _stored(engine: Engine) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(Event)).one()


fuzz = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@fuzz
@given(envelope=envelopes)
def test_hostile_envelopes_get_a_clean_answer(
    receiver: tuple[httpx.Client, Engine], envelope: dict
) -> None:
    client, engine = receiver
    before = _stored(engine)
    response = client.post("/webhooks/aircall", content=json.dumps(envelope))
    assert response.status_code in (200, 400, 401), response.text
    if envelope["token"] != WEBHOOK_TOKEN:
        assert response.status_code in (400, 401)
    if response.status_code != 200:
        assert _stored(engine) == before


@fuzz
@given(body=st.binary(max_size=4096))
def test_arbitrary_bytes_are_refused(receiver: tuple[httpx.Client, Engine], body: bytes) -> None:
    client, engine = receiver
    response = client.post("/webhooks/aircall", content=body)
    assert response.status_code in (400, 401)
    assert _stored(engine) == 0
