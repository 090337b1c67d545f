"""What an attacker (or a buggy sender) can put in a webhook, a path, a query or a form: a 4xx
with a short reason, never a 5xx, and no row that breaks the pages afterwards (issue 14, items
2 and 3). Over real HTTP against the app on loopback, on both databases."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, text
from sqlmodel import Session, select

from integrations.store import db
from integrations.store.automation_models import Automation, DispositionRule
from integrations.store.models import Event
from integrations.sync.runtime import prepare
from tests.conftest import WEBHOOK_TOKEN
from tests.signin import SignedIn, Site
from web.templating import make_templates

AGENT, MANAGER = "jane.agent@example.com", "sam@example.com"
PAGES = ["/", "/review", "/charts", "/untagged", "/settings/agents", "/automations"]
CALL = {
    "id": 42,
    "direction": "inbound",
    "status": "done",
    "started_at": 1_764_000_000,
    "duration": 65,
    "raw_digits": "+1 415-555-0100",
    "user": {"id": 1, "name": "Jane", "email": AGENT},
    "tags": [{"name": "Interested"}],
}


def raw_envelope(data: str, *, token: str = json.dumps(WEBHOOK_TOKEN), event: str = "call.ended"):
    """A delivery written by hand: ``data`` and ``token`` are JSON text, not Python values."""
    return (
        f'{{"resource": "call", "event": "{event}", "timestamp": 1764000100, '
        f'"token": {token}, "data": {data}}}'
    ).encode()


def _post(site: Site, body: bytes) -> httpx.Response:
    return httpx.post(f"{site.url}/webhooks/aircall", content=body, timeout=10)


def _stored(engine: Engine) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(Event)).one()


CALL_TEXT = json.dumps(CALL)
REFUSED = {
    "NaN agent id": (400, CALL_TEXT.replace('"id": 1,', '"id": NaN,')),
    "Infinity": (400, CALL_TEXT.replace('"tags": [', '"contact": {"id": Infinity}, "tags": [')),
    "-Infinity": (400, CALL_TEXT.replace('"id": 1,', '"id": -Infinity,')),
    "1e999 reads as infinity": (400, CALL_TEXT.replace('"id": 1,', '"id": 1e999,')),
    "lone surrogate": (400, CALL_TEXT.replace("+1 415-555-0100", "\\ud800")),
    "lone low surrogate in a key": (400, CALL_TEXT.replace('"name"', '"\\udc00"')),
    "NUL": (400, CALL_TEXT.replace('"Jane"', '"Jane\\u0000"')),
    "1,000 deep": (400, CALL_TEXT.replace('"tags": [', '"tags": [' + "[" * 1000 + "]" * 1000)),
    "huge agent id": (400, CALL_TEXT.replace('"id": 1,', f'"id": {2**64},')),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_webhook_that_could_break_the_pages_is_refused_at_the_door(site: Site, case: str):
    status, data = REFUSED[case]
    answer = _post(site, raw_envelope(data))
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]
    assert _stored(site.engine) == 0


def test_a_non_call_event_id_beyond_64_bits_is_a_400(site: Site) -> None:
    body = raw_envelope(f'{{"id": 7, "call_id": {2**63}}}', event="summary.created")
    assert _post(site, body).status_code == 400
    body = raw_envelope(f'{{"id": {2**63}}}', event="contact.created")
    assert _post(site, body).status_code == 400
    assert _stored(site.engine) == 0


@pytest.mark.parametrize(
    "token", ['"\\ud800"', '"\\u00e9t\\u00e9"', "null", "5", "[]", '{"a": 1}', "missing"]
)
def test_a_missing_non_string_or_odd_token_is_refused_cleanly(site: Site, token: str) -> None:
    body = raw_envelope(CALL_TEXT, token=token)
    if token == "missing":
        body = json.dumps({"resource": "call", "event": "call.ended", "data": CALL}).encode()
    answer = _post(site, body)
    # A lone surrogate is not JSON we take (400); any other wrong token is a wrong token (401).
    assert answer.status_code == (400 if "ud800" in token else 401), answer.text
    assert _stored(site.engine) == 0


def test_a_token_alone_holding_a_lone_surrogate_is_a_400_not_a_500(site: Site) -> None:
    assert _post(site, b'{"token": "\\ud800"}').status_code == 400


# -- paths, queries, forms ------------------------------------------------------------------


HUGE = str(2**64)


def test_ids_beyond_64_bits_in_paths_are_404(site: Site) -> None:
    manager = site.user(MANAGER, "manager")
    for path in (
        f"/calls/{HUGE}",
        f"/calls/{HUGE}/caller",
        f"/calls/{HUGE}/actions",
        f"/review/batches/{HUGE}",
    ):
        assert manager.client.get(path).status_code == 404, path
    for action in ("resync", "disposition", "lead", "pick"):
        answer = manager.client.post(
            f"/calls/{HUGE}/{action}", data={"csrf_token": manager.csrf, "tag": "x"}
        )
        assert answer.status_code == 404, action


@pytest.mark.parametrize("page", ["²", "٣", "-1", "0", "9" * 40, "x"])
def test_a_review_page_number_that_is_not_one_is_a_400(site: Site, page: str) -> None:
    manager = site.user(MANAGER, "manager")
    answer = manager.client.get("/review", params={"page": page})
    assert answer.status_code == 400
    assert "page must be a whole number" in answer.text


def test_restoring_a_version_that_is_not_a_number_is_a_400(site: Site) -> None:
    manager = site.user(MANAGER, "manager")
    with Session(site.engine) as s:
        automation_id = s.exec(select(Automation.id)).first()
    for version in ("²", "9" * 40, ""):
        answer = manager.client.post(
            f"/automations/{automation_id}/restore",
            data={"csrf_token": manager.csrf, "version": version},
        )
        assert answer.status_code == 400, version


@pytest.mark.parametrize("since", ["²", "٣٣٣", "9" * 30, str(2**63)])
def test_a_backfill_start_that_is_not_a_time_is_a_400(site: Site, since: str) -> None:
    manager = site.user(MANAGER, "manager")
    answer = manager.client.post(
        "/settings/backfill",
        data={"csrf_token": manager.csrf, "since": since, "until": "1764000000"},
    )
    assert answer.status_code == 400
    assert "not a time" in answer.text


def test_a_disposition_option_too_large_to_be_a_number_is_refused_when_saved(site: Site) -> None:
    manager = site.user(MANAGER, "manager")
    answer = manager.client.post(
        "/automations/dispositions/no_answer",
        data={
            "csrf_token": manager.csrf,
            "name": "No Answer",
            "tags": "No Answer",
            "enabled": "on",
            "opt-delay_seconds": "9" * 5000,
        },
    )
    assert answer.status_code == 400
    assert "delay_seconds must be a number from 0 to 2592000" in answer.text
    with Session(site.engine) as s:
        rule = s.get(DispositionRule, "no_answer")
        assert rule is not None
        assert rule.options["delay_seconds"] == 3600


# -- every page still renders ------------------------------------------------------------------


def _pages_render(manager: SignedIn, agent: SignedIn, call_ids: list[int]) -> None:
    for who in (manager, agent):
        for path in [*PAGES, *(f"/calls/{i}" for i in call_ids)]:
            answer = who.client.get(path)
            assert answer.status_code in (200, 403, 404), (path, answer.text[:300])


hostile_text = st.text(st.characters(codec=None), max_size=12)  # surrogates included
hostile_number = (
    st.floats()  # NaN and both infinities
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1])
)
leaf = st.none() | st.booleans() | hostile_number | hostile_text
nested = st.recursive(
    leaf,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3)
    ),
    max_leaves=6,
)
call_data = st.fixed_dictionaries(
    {
        "id": st.integers(min_value=1, max_value=50),
        "direction": st.sampled_from(["inbound", "outbound"]),
        "status": st.sampled_from(["initial", "answered", "done"]),
        "started_at": st.integers(min_value=0, max_value=2**40) | st.none(),
        "answered_at": st.integers(min_value=0, max_value=2**40) | st.none(),
        "duration": st.integers(min_value=0, max_value=2**31 - 1),
        "raw_digits": hostile_text | st.none(),
        "user": st.fixed_dictionaries(
            {"id": hostile_number | leaf, "email": st.just(AGENT) | hostile_text},
            optional={"name": hostile_text},
        ),
        "contact": st.none() | st.dictionaries(hostile_text, nested, max_size=3),
        "tags": st.lists(st.fixed_dictionaries({"name": hostile_text}), max_size=2),
        "comments": st.lists(st.fixed_dictionaries({"content": hostile_text}), max_size=2),
    },
    optional={"extra": nested},
)
deliveries = st.fixed_dictionaries(
    {
        "event": st.sampled_from(["call.ended", "call.tagged", "call.answered", "call.created"]),
        "data": call_data,
    }
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(delivery=deliveries)
def test_no_webhook_gives_a_5xx_and_every_page_renders_after_any_accepted_one(
    site: Site, signed_in: tuple[SignedIn, SignedIn], delivery: dict
) -> None:
    body = json.dumps(  # Python's json writes NaN, Infinity and lone surrogates as is
        {
            "resource": "call",
            "event": delivery["event"],
            "timestamp": 1_764_000_100,
            "token": WEBHOOK_TOKEN,
            "data": delivery["data"],
        }
    ).encode()
    answer = _post(site, body)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 200:
        _pages_render(*signed_in, [delivery["data"]["id"]])


@pytest.fixture
def signed_in(site: Site) -> tuple[SignedIn, SignedIn]:
    return site.user(MANAGER, "manager"), site.user(AGENT, "agent")


# -- rows stored before the door was strict ------------------------------------------------------


def test_the_migration_repairs_stored_json_rows(database_url: str) -> None:
    engine = db.make_engine(database_url)
    command.upgrade(db._alembic_config(engine), "0009")
    bad_snapshot = CALL_TEXT.replace('"id": 1,', '"id": NaN,').replace("+1 415-555-0100", "\\ud800")
    if engine.dialect.name == "postgresql":  # its json type refuses NaN, not lone surrogates
        bad_snapshot = CALL_TEXT.replace("Jane", "Jane\\udc00")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO calls (id, snapshot, direction, status, e164, agent_email, "
                "started_at, duration, ended, sf_requests, updated_at, snapshot_at, "
                "snapshot_rank) VALUES (42, :snapshot, 'inbound', 'done', NULL, :agent, "
                "1764000000, 65, true, 0, 0, 1764000100, 2)"
            ),
            {"snapshot": bad_snapshot, "agent": AGENT},
        )
    prepare(engine)  # 0010 and on
    with engine.connect() as connection:
        (stored,) = connection.execute(text("SELECT CAST(snapshot AS TEXT) FROM calls")).one()
    repaired = json.loads(stored, parse_constant=lambda name: pytest.fail(name))
    assert "\\ud800" not in stored
    assert "\\udc00" not in stored
    if engine.dialect.name == "sqlite":
        assert repaired["user"]["id"] is None
        assert repaired["raw_digits"] == "\ufffd"
    else:
        assert repaired["user"]["name"] == "Jane\ufffd"
    engine.dispose()


def test_the_migration_drops_a_stored_infinite_disposition_option(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    prepare(engine)
    command.downgrade(db._alembic_config(engine), "0009")
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE disposition_rules SET options = :o WHERE key = 'no_answer'"),
            {"o": '{"delay_seconds": Infinity, "due_days": 1}'},
        )
    prepare(engine)
    with Session(engine) as s:
        rule = s.get(DispositionRule, "no_answer")
        assert rule is not None
        assert rule.options == {"due_days": 1}  # the default delay applies again
    engine.dispose()


def test_pages_render_text_holding_a_lone_surrogate() -> None:
    templates = make_templates("UTC")
    page = templates.env.from_string("{{ name }} {{ data|pretty }} {{ n|duration }}").render(
        name="Jane\ud800", data={"x": "\udc00"}, n=math.nan
    )
    page.encode("utf-8")  # a lone surrogate left in would raise here
    assert page.startswith("Jane\ufffd ")
    assert page.count("\ufffd") == 2
    assert page.endswith(" 0:00")
