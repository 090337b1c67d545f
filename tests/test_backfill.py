"""Backfill after an outage, proved against the emulators: the Tasks in Salesforce, the requests
Aircall answered (and when), and the suggestion a worker makes when it starts."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from integrations.aircall.client import AircallClient, make_http
from integrations.aircall.emulator import Company
from integrations.loopback import Running, wait_for
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Org
from integrations.settings import Settings
from integrations.store.models import Event
from integrations.sync.jobs import budget, kinds
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.worker import make_context
from integrations.sync.recovery import backfill as recovery
from tests.conftest import WEBHOOK_TOKEN, SettingsWith, StackWith, running_stack
from tests.helpers import AGENT_EMAIL, events, jobs, settled, worker_env

RATE = 2  # Aircall requests a minute: three pages of calls need two minutes
CALLERS = ["+14155550100", "+14155550101", "+442071838750", "+33142685300"]
WEBHOOK_EVENTS = ["call.created", "call.hungup", "call.ended"]  # no insight cards: no API use


class Clock:
    """Time for Aircall's rate limit: real time, plus every wait the backfill asked for, at
    once. It starts just after a minute boundary, so which minute a request falls in is known."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.waits: list[float] = []
        self.next_minute()

    def now(self) -> float:
        return time.time() + self.offset

    def next_minute(self) -> None:
        self.offset += 61 - self.now() % 60

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.offset += seconds


class Recorder(httpx.AsyncBaseTransport):
    """The real HTTP transport, noting (emulated time, status) of every answer."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.answers: list[tuple[float, int]] = []
        self._http = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._http.handle_async_request(request)
        self.answers.append((self.clock.now(), response.status_code))
        return response

    async def aclose(self) -> None:
        await self._http.aclose()

    def per_minute(self) -> Counter[int]:
        return Counter(int(at // 60) for at, status in self.answers if status != 429)

    def statuses(self) -> list[int]:
        return [status for _, status in self.answers]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def company(clock: Clock) -> Company:
    """The Aircall company, its rate limit counted in the test's clock."""
    return Company(rate_limit=RATE, clock=clock.now)


def aircall_on(clock: Clock, settings: Settings, engine: Engine) -> tuple[AircallClient, Recorder]:
    """The production client and shared budget, only reading the test's clock."""
    recorder = Recorder(clock)

    async def spend() -> float:
        return await asyncio.to_thread(
            budget.take, engine, "aircall", settings.aircall_rate_limit, clock.now()
        )

    async def hold(until: float) -> None:
        await asyncio.to_thread(budget.block_until, engine, "aircall", until)

    return AircallClient(make_http(settings, recorder), spend, hold), recorder


def context(settings: Settings, engine: Engine, aircall: AircallClient) -> Context:
    return Context(engine, settings, SalesforceClient(settings), aircall)


def run_backfill(ctx: Context, since: int, until: int, **kwargs: object) -> recovery.BackfillReport:
    async def run() -> recovery.BackfillReport:
        try:
            return await recovery.backfill(ctx, _utc(since), _utc(until), **kwargs)
        finally:
            await ctx.aircall.aclose()

    return asyncio.run(run())


def _utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def make_calls(company: Company, count: int, start: int, step: int = 30) -> list[int]:
    """``count`` answered inbound calls, one every ``step`` seconds from ``start``, all over."""
    agent = company.list_users()[0] if company.users else company.add_user("Jane", AGENT_EMAIL)
    number = next(iter(company.numbers.values()), None) or company.add_number(
        "Support line", "+1 212 555 0199"
    )
    ids = []
    for i in range(count):
        at = start + i * step
        call = company.start_call(
            direction="inbound",
            external=CALLERS[i % len(CALLERS)],
            number_id=number["id"],
            user_id=agent["id"],
            at=at,
        )
        company.answer(call["id"], user_id=agent["id"], at=at + 5)
        company.hangup(call["id"], at=at + 20)
        company.end(call["id"])
        ids.append(call["id"])
    return ids


def test_backfill_logs_missed_calls_once_within_the_rate_limit(
    stack_with: StackWith, org: Org, company: Company, clock: Clock, engine: Engine
) -> None:
    start = int(time.time()) - 4 * 3600
    with stack_with(task_logged_at="end", aircall_rate_limit=RATE) as stack:
        settings = stack.settings
        (webhook,) = company.list_webhooks()
        company.update_webhook(webhook["webhook_id"], {"events": WEBHOOK_EVENTS})
        heard = make_calls(company, 40, start)
        stack.sender.drain(timeout=60)  # 200 deliveries: room for a busy machine
        wait_for(lambda: len(org.records("Task")) == 40, timeout=30)
        settled(engine, "log_call", count=40)
        # The outage: Aircall stops delivering, calls go on.
        company.update_webhook(webhook["webhook_id"], {"active": False, "events": WEBHOOK_EVENTS})
        missed = make_calls(company, 80, start + 40 * 30)

        clock.next_minute()
        client, recorder = aircall_on(clock, settings, engine)
        ctx = context(settings, engine, client)
        report = run_backfill(ctx, start, start + 3 * 3600, sleep=clock.sleep)

        assert (report.seen, report.already_synced, report.unfinished) == (120, 40, 0)
        assert sorted(report.queued) == sorted(missed)
        assert (report.windows, report.splits, report.pages) == (1, 0, 3)
        wait_for(lambda: len(org.records("Task")) == 120, timeout=30)
        logged = settled(engine, "log_call", count=120)
        # The missed calls' Tasks went after live work (bulk priority), the others did not.
        bulk = {job.call_id for job in logged if job.priority == kinds.BULK}
        assert bulk == set(missed)
        # The budget held every minute to RATE requests; Aircall never had to refuse one.
        assert recorder.statuses() == [200, 200, 200]
        assert max(recorder.per_minute().values()) <= RATE
        assert len(clock.waits) == 1
        assert 0 < clock.waits[0] <= 61

        stored = len(events(engine))
        client, recorder = aircall_on(clock, settings, engine)
        again = run_backfill(
            context(settings, engine, client), start, start + 3 * 3600, sleep=clock.sleep
        )
        assert (again.seen, again.already_synced, again.queued) == (120, 120, [])
        assert len(events(engine)) == stored
        assert all(job.status == "done" for job in jobs(engine, "log_call"))
        assert set(recorder.statuses()) == {200}
        assert max(recorder.per_minute().values()) <= RATE

    tasks = org.records("Task")
    assert len(tasks) == 120
    assert sorted(int(task["CallObject"]) for task in tasks) == sorted(heard + missed)


def _aircall_settings(aircall: Running, database_url: str, **extra: object) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        aircall_api_url=aircall.url,
        aircall_api_id="emulator-id",
        aircall_api_token="emulator-token",
        retry_base_seconds=0.05,
        **extra,
    )


def test_a_429_from_another_integration_is_waited_out(
    aircall: Running, company: Company, clock: Clock, database_url: str, engine: Engine
) -> None:
    # Another integration on the company spends part of the minute: Aircall allows 2 to us,
    # while our own budget would allow 3.
    settings = _aircall_settings(aircall, database_url, aircall_rate_limit=RATE + 1)
    start = int(time.time()) - 4 * 3600
    ids = make_calls(company, 120, start)
    clock.next_minute()
    client, recorder = aircall_on(clock, settings, engine)
    ctx = context(settings, engine, client)

    report = run_backfill(ctx, start, start + 3 * 3600, sleep=clock.sleep)

    assert sorted(report.queued) == sorted(ids)
    assert recorder.statuses() == [200, 200, 429, 200]
    (refused_at, _), (retried_at, _) = recorder.answers[2:]
    assert retried_at >= (refused_at // 60 + 1) * 60  # not before X-AircallApi-Reset
    assert len(jobs(engine, "log_call")) == 120


def test_a_window_over_the_paging_cap_is_split(
    aircall: Running,
    company: Company,
    database_url: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Aircall pages 10,000 calls of a query at most; the emulator, here, 100.
    monkeypatch.setattr("integrations.aircall.emulator.app.MAX_PAGEABLE_ITEMS", 100)
    company.rate_limit = 120
    settings = _aircall_settings(aircall, database_url)
    start = int(time.time()) - 6 * 3600
    ids = make_calls(company, 250, start, step=60)
    ctx = make_context(settings, engine)

    report = run_backfill(ctx, start, start + 5 * 3600, window_cap=100)

    assert sorted(report.queued) == sorted(ids)  # none lost past the cap
    assert report.seen == 250
    assert report.splits >= 2
    assert report.windows == report.splits + 1
    assert len({event.call_id for event in events(engine)}) == 250


def _backdate_webhooks(engine: Engine, seconds: float) -> None:
    with Session(engine) as s:
        s.execute(update(Event).values(received_at=Event.received_at - seconds))
        s.commit()


def test_an_outage_is_noticed_at_start_and_the_window_offered(
    settings_with: SettingsWith,
    org: Org,
    company: Company,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    company.rate_limit = 120
    settings = settings_with(backfill_gap_minutes=30)

    def suggest() -> recovery.Window | None:
        async def run() -> recovery.Window | None:
            ctx = make_context(settings, engine)
            try:
                return await recovery.suggest_window(ctx)
            finally:
                await ctx.aircall.aclose()

        return asyncio.run(run())

    assert suggest() is None  # a new installation: nothing to catch up with
    with running_stack(settings, engine, org, company, worker=False) as stack:
        (webhook,) = company.list_webhooks()
        make_calls(company, 1, int(time.time()) - 3 * 3600)
        stack.sender.drain(timeout=10)
        company.update_webhook(webhook["webhook_id"], {"active": False})
    requests = company.requests_made
    assert suggest() is None  # webhooks came a moment ago
    assert company.requests_made == requests  # and Aircall was not even asked

    _backdate_webhooks(engine, 2 * 3600)
    assert suggest() is None  # a quiet two hours: Aircall has no call since
    assert recovery.suggested_window(engine) is None

    missed = make_calls(company, 3, int(time.time()) - 3600)
    with caplog.at_level(logging.WARNING, logger="integrations.sync.recovery.backfill"):
        window = suggest()
    assert window is not None
    assert window.calls == 3
    assert recovery.suggested_window(engine) == window
    (record,) = [r for r in caplog.records if r.getMessage() == "backfill.suggested"]
    assert record.command == window.command
    assert window.command.startswith("callbridge backfill --since ")

    report = run_backfill(
        make_context(settings, engine),
        int(window.since.timestamp()),
        int(window.until.timestamp()),
    )
    assert sorted(report.queued) == sorted(missed)
    assert recovery.suggested_window(engine) is None  # the backfill covered it
    assert suggest() is None


@pytest.mark.usefixtures("engine")  # the database is migrated before the command runs
def test_the_backfill_command_logs_the_calls_and_waits_for_them(
    settings: Settings, org: Org, company: Company
) -> None:
    company.rate_limit = 120
    start = int(time.time()) - 2 * 3600
    ids = make_calls(company, 5, start)
    env = worker_env(settings, WEBHOOK_TOKEN, JOB_LEASE_SECONDS="3", RETRY_BASE_SECONDS="0.05")
    since = datetime.fromtimestamp(start - 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    command = ["backfill", "--since", since, "--wait"]
    done = subprocess.run(  # noqa: S603  (our own command, with arguments built here)
        [sys.executable, "-m", "web.cli", "--log-level", "WARNING", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "5 calls seen, 0 already synced" in done.stdout
    assert "5 queued" in done.stdout
    assert "logged 5, failed 0" in done.stdout
    tasks = org.records("Task")
    assert sorted(int(task["CallObject"]) for task in tasks) == sorted(ids)
