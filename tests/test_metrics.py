"""``GET /metrics``: behind its bearer token, and its figures move with what Callbridge does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session

from integrations.loopback import serve
from integrations.metrics import Metrics
from integrations.settings import Settings
from integrations.store import db
from integrations.store.models import ApiUsage, Job, RateWindow
from integrations.sync.jobs.budget import BLOCK
from tests.conftest import WEBHOOK_TOKEN, StackWith
from tests.helpers import AGENT_EMAIL, answered_inbound_call, envelope, post_webhook, settled

TOKEN = "metrics-0123456789abcdef"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base_url: str, token: str = TOKEN) -> Samples:
    """Every sample /metrics shows, parsed as Prometheus parses it."""
    answer = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def web(engine: Engine, database_url: str) -> Iterator[str]:
    """The web tier alone (no worker, no emulators), with METRICS_TOKEN set."""
    from web.app import create_app

    settings = Settings(
        _env_file=None,
        database_url=database_url,
        aircall_webhook_tokens=[SecretStr(WEBHOOK_TOKEN)],
        metrics_token=SecretStr(TOKEN),
        aircall_rate_limit=120,
    )
    with serve(create_app(settings, engine=engine, worker=False)) as running:
        yield running.url


def test_metrics_are_refused_without_the_right_bearer_token(web: str) -> None:
    for authorization in [
        None,
        "Bearer wrong-token",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        "Bearer",
    ]:
        headers = {"Authorization": authorization} if authorization else {}
        answer = httpx.get(f"{web}/metrics", headers=headers)
        assert answer.status_code == 401, authorization
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "callbridge_" not in answer.text


def test_metrics_answer_with_the_token_and_read_the_database(web: str, engine: Engine) -> None:
    now = time.time()
    with Session(engine) as s:
        s.add(Job(kind="log_call", dedupe_key="a", status="queued", run_at=now - 30))
        s.add(Job(kind="log_call", dedupe_key="b", status="queued", run_at=now + 600))  # not due
        s.add(Job(kind="log_call", dedupe_key="c", status="done", run_at=now - 90))
        s.add(Job(kind="insight_card", dedupe_key="d", status="failed", error_code="INVALID_FIELD"))
        s.add(Job(kind="log_call", dedupe_key="e", status="failed", error_code="INVALID_FIELD"))
        s.add(Job(kind="log_call", dedupe_key="f", status="failed"))
        s.add(ApiUsage(service="salesforce", used=1234, max=15000, updated_at=now))
        for minute in (int(now // 60), int(now // 60) + 1):  # the scrape may fall in the next
            s.add(RateWindow(name="aircall", window=minute, used=7))
        s.commit()

    samples = scrape(web)
    assert value(samples, "callbridge_database_up") == 1
    assert value(samples, "callbridge_jobs", kind="log_call", state="queued") == 2
    assert value(samples, "callbridge_jobs", kind="log_call", state="done") == 1
    assert value(samples, "callbridge_jobs", kind="insight_card", state="failed") == 1
    assert value(samples, "callbridge_failed_jobs", error_code="INVALID_FIELD") == 2
    assert value(samples, "callbridge_failed_jobs", error_code="unknown") == 1
    lag = value(samples, "callbridge_queue_lag_seconds")
    assert lag is not None
    assert 30 <= lag < 90  # the due job's wait; the one not yet due does not count
    assert value(samples, "callbridge_salesforce_api_used_requests") == 1234
    assert value(samples, "callbridge_salesforce_api_limit_requests") == 15000
    assert value(samples, "callbridge_aircall_budget_limit_requests") == 120
    assert value(samples, "callbridge_aircall_budget_remaining_requests") == 113

    with Session(engine) as s:  # Aircall answered 429: nobody may spend until it said
        s.add(RateWindow(name="aircall", window=BLOCK, blocked_until=time.time() + 60))
        s.commit()
    assert value(scrape(web), "callbridge_aircall_budget_remaining_requests") == 0


def test_refused_webhooks_move_the_refused_counter_by_reason(web: str) -> None:
    before = scrape(web)
    assert (
        value(before, "callbridge_webhooks_refused_total", source="aircall", reason="bad_token")
        == 0
    )

    body = envelope("call.created", {"id": 1}, "not-our-token")
    assert post_webhook(web, body).status_code == 401
    assert post_webhook(web, b"{not json").status_code == 400
    assert post_webhook(web, b"x" * (1024 * 1024 + 1)).status_code == 413

    after = scrape(web)
    for reason in ("bad_token", "bad_body", "too_large"):
        assert (
            value(after, "callbridge_webhooks_refused_total", source="aircall", reason=reason) == 1
        )
    assert value(after, "callbridge_webhooks_accepted_total", source="aircall") == 0


def test_a_finished_call_moves_webhooks_accepted_and_jobs_done(stack_with: StackWith) -> None:
    with stack_with(metrics_token=SecretStr(TOKEN)) as stack:
        agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
        number = stack.company.add_number("Support line", "+1 212 555 0199")
        stack.org.add_user("Jane Agent", AGENT_EMAIL)
        answered_inbound_call(stack.company, number["id"], agent["id"], "+14155550100")
        stack.sender.drain(timeout=10)
        settled(stack.engine, "log_call")

        after = scrape(stack.app.url)
        assert value(after, "callbridge_jobs", kind="log_call", state="done") == 1
        accepted = value(after, "callbridge_webhooks_accepted_total", source="aircall")
        assert accepted is not None
        assert accepted >= 4  # created, answered, hung up, ended
        # The in-process worker timed each run (a job runs again when new data came meanwhile).
        runs = value(after, "callbridge_job_duration_seconds_count", kind="log_call")
        assert runs is not None
        assert runs >= 1
        (task,) = stack.org.records("Task")
        assert task["CallType"] == "Inbound"


def test_metrics_are_off_without_a_token(engine: Engine, database_url: str) -> None:
    from web.app import create_app

    settings = Settings(_env_file=None, database_url=database_url)
    with serve(create_app(settings, engine=engine, worker=False)) as running:
        answer = httpx.get(f"{running.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 404
        assert "callbridge_" not in answer.text


def test_a_database_that_does_not_answer_gives_up_0_and_keeps_the_counters(
    tmp_path: Path,
) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'gone' / 'callbridge.db'}")  # no such folder
    metrics = Metrics(engine, aircall_limit=120)
    metrics.refused("aircall", "bad_token")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }
    assert value(samples, "callbridge_database_up") == 0
    assert (
        value(samples, "callbridge_webhooks_refused_total", source="aircall", reason="bad_token")
        == 1
    )
    assert value(samples, "callbridge_jobs", kind="log_call", state="done") is None
