"""Manager review: the table, its filters and pages, a call's timeline, re-syncs, the charts and
the dashboard's socket, against the app served on loopback (both databases)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime

import pytest
import websockets
from pydantic import SecretStr
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from integrations.aircall.events import parse
from integrations.loopback import serve, wait_for
from integrations.store.models import AgentUser, ApiUsage, Job, JobStep, SyncLink
from integrations.sync.intake import deliveries
from integrations.sync.jobs import kinds, queue
from integrations.sync.review import browse, stats
from tests.conftest import WEBHOOK_TOKEN
from tests.helpers import envelope, post_webhook
from tests.signin import SignedIn, Site
from web.app import create_app

DAY = 1_764_000_000  # 2025-11-24 16:00 UTC
SF_ERROR = (
    '[{"message": "bad value for restricted picklist field: Maybe", '
    '"errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["CallDisposition"]}]'
)


def call_data(call_id: int, agent: str, *, status: str = "done", **extra: object) -> dict:
    data = {
        "id": call_id,
        "direction": "inbound",
        "status": status,
        "started_at": DAY + call_id,
        "duration": 65,
        "raw_digits": "+1 415-555-0100",
        "user": {"id": 1, "name": agent.split("@")[0].title(), "email": agent},
        "tags": [],
    }
    data.update(extra)
    return data


def accept(engine: Engine, name: str, data: dict, timestamp: int = 1) -> None:
    event = parse(envelope(name, data, WEBHOOK_TOKEN, timestamp), [SecretStr(WEBHOOK_TOKEN)])
    deliveries.accept(engine, event)


def ended(engine: Engine, call_id: int, agent: str, **extra: object) -> None:
    accept(engine, "call.ended", call_data(call_id, agent, **extra))


def settle(engine: Engine, call_id: int, status: str, *, record: str | None = None) -> None:
    """What the worker would have done with the call's Task job."""
    with Session(engine) as s:
        s.execute(
            update(Job)
            .where(Job.call_id == call_id, Job.kind == kinds.LOG_CALL)
            .values(
                status=status,
                attempts=1,
                finished_at=time.time(),
                error_code="INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
                if status == "failed"
                else None,
                last_error=SF_ERROR if status == "failed" else None,
            )
        )
        if record:
            s.add(
                SyncLink(
                    call_id=call_id,
                    action="A09",
                    sobject="Task",
                    record_id=record,
                    created_at=time.time(),
                )
            )
        s.commit()


@pytest.fixture
def manager(site: Site) -> SignedIn:
    return site.user("sam@example.com", "manager")


def test_the_table_shows_each_action_with_its_link_or_exact_error(
    site: Site, manager: SignedIn
) -> None:
    ended(site.engine, 1, "maya@example.com", tags=[{"id": 1, "name": "Sale"}])
    ended(site.engine, 2, "leo@example.com")
    accept(site.engine, "call.created", call_data(3, "leo@example.com", status="initial"))
    settle(site.engine, 1, "done", record="00T000000000001AAA")
    settle(site.engine, 2, "failed")
    page = manager.client.get("/review").text
    assert "3 calls" in page
    record = f"{site.settings.record_base_url}/lightning/r/Task/00T000000000001AAA/view"
    assert f'href="{record}"' in page
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in page
    assert "bad value for restricted picklist field: Maybe" in page
    assert '<span class="tag">Sale</span>' in page
    assert "1:05" in page  # duration


def test_every_job_kind_the_worker_runs_has_a_label() -> None:
    """A job kind the worker runs without a label in ``kinds.KINDS`` (or the reverse) fails here."""
    from integrations.sync.runtime import HANDLERS

    assert sorted(set(HANDLERS) ^ set(kinds.KINDS)) == []
    for name, spec in kinds.KINDS.items():
        assert spec.label not in ("", name), name


def test_the_sync_cell_names_each_job_kind_for_people(site: Site, manager: SignedIn) -> None:
    ended(site.engine, 1, "maya@example.com", tags=[{"id": 1, "name": "Interested"}])
    with Session(site.engine) as s:
        for kind in ("disposition", "dialer_requeue", "automation"):
            queue.enqueue(s, kind=kind, key=f"{kind}:1", call_id=1)
        s.commit()
    page = manager.client.get("/review").text
    for kind in ("disposition", "dialer_requeue", "automation"):
        assert kinds.KINDS[kind].label in page
    assert "dialer_requeue" not in page


def test_filters_select_by_agent_disposition_status_and_date(site: Site, manager: SignedIn) -> None:
    ended(site.engine, 1, "maya@example.com", tags=[{"id": 1, "name": "Sale"}])
    ended(site.engine, 2, "leo@example.com", tags=[{"id": 2, "name": "No answer"}])
    ended(site.engine, 3, "leo@example.com", started_at=DAY + 86_400 * 3)
    settle(site.engine, 1, "done", record="00T000000000001AAA")
    settle(site.engine, 2, "failed")

    def shown(**params: str) -> set[int]:
        answer = manager.client.get(
            "/review", params=params, headers={"HX-Request": "true", "HX-Target": "review-results"}
        )
        assert answer.status_code == 200
        assert answer.text.startswith('<section id="review-results"')  # the partial only
        return {i for i in (1, 2, 3) if f'id="review-call-{i}"' in answer.text}

    assert shown() == {1, 2, 3}
    assert shown(agent="leo@example.com") == {2, 3}
    assert shown(disposition="Sale") == {1}
    assert shown(status="failed") == {2}
    assert shown(status="done") == {1}
    assert shown(status="pending") == {3}
    day = datetime.fromtimestamp(DAY, UTC).date().isoformat()
    assert shown(**{"from": day, "to": day}) == {1, 2}
    assert manager.client.get("/review", params={"from": "yesterday"}).status_code == 400


def test_pages_are_cut_on_the_server(site: Site, manager: SignedIn) -> None:
    for call_id in range(1, browse.PAGE_SIZE + 6):
        ended(site.engine, call_id, "maya@example.com")
    first = manager.client.get("/review").text
    second = manager.client.get("/review", params={"page": "2"}).text
    assert first.count('class="call sync-') == browse.PAGE_SIZE
    assert second.count('class="call sync-') == 5
    assert "Page 2 of 2" in second
    assert 'id="review-call-1"' in second  # oldest last


def test_the_call_page_shows_webhooks_and_what_was_sent_and_received(
    site: Site, manager: SignedIn
) -> None:
    accept(site.engine, "call.created", call_data(5, "maya@example.com", status="initial"))
    ended(site.engine, 5, "maya@example.com")
    settle(site.engine, 5, "failed")
    with Session(site.engine) as s:
        job = s.exec(select(Job).where(Job.call_id == 5)).one()
        s.add(
            JobStep(
                job_id=job.id,
                call_id=5,
                at=time.time(),
                service="salesforce",
                action="create Task",
                sent={"Subject": "Inbound call from <b>Gary</b>"},
                received=json.loads(SF_ERROR),
                ok=False,
            )
        )
        s.commit()
    page = manager.client.get("/calls/5").text
    assert "<code>call.created</code>" in page
    assert "<code>call.ended</code>" in page
    assert "Create a Task in Salesforce (failed)" in page
    assert "Inbound call from &lt;b&gt;Gary&lt;/b&gt;" in page
    assert "Re-sync this call" in page


def test_resyncing_a_call_queues_its_failed_action_again(site: Site, manager: SignedIn) -> None:
    ended(site.engine, 1, "maya@example.com")
    settle(site.engine, 1, "failed")
    answer = manager.client.post(
        "/calls/1/resync",
        headers={"X-CSRF-Token": manager.csrf, "HX-Request": "true", "HX-Target": "call-jobs"},
    )
    assert answer.status_code == 200
    assert 'id="call-jobs"' in answer.text
    assert "pending" in answer.text
    (job,) = _jobs(site.engine)
    assert (job.status, job.priority, job.attempts) == ("queued", kinds.NORMAL, 0)


def test_bulk_resync_queues_the_failed_calls_of_the_filter_once(
    site: Site, manager: SignedIn
) -> None:
    for call_id in (1, 2, 3):
        ended(site.engine, call_id, "leo@example.com" if call_id < 3 else "maya@example.com")
        settle(site.engine, call_id, "failed")
    ended(site.engine, 4, "leo@example.com")
    settle(site.engine, 4, "done", record="00T000000000004AAA")
    form = {"csrf_token": manager.csrf, "agent": "leo@example.com"}
    answer = manager.client.post("/review/resync", data=form)
    assert answer.status_code == 303
    batch_url = answer.headers["location"]
    statuses = {job.call_id: (job.status, job.priority) for job in _jobs(site.engine)}
    assert statuses == {
        1: ("queued", kinds.BULK),
        2: ("queued", kinds.BULK),
        3: ("failed", kinds.NORMAL),
        4: ("done", kinds.NORMAL),
    }
    again = manager.client.post("/review/resync", data=form, headers={"HX-Request": "true"}).text
    assert "No failed calls to re-sync" in again  # the queued ones are not queued twice
    progress = manager.client.get(batch_url, headers={"HX-Request": "true"})
    assert "0 of 2 done" in progress.text
    assert 'hx-trigger="every 500ms"' in progress.text
    _finish_all(site.engine)
    progress = manager.client.get(batch_url, headers={"HX-Request": "true"})
    assert "Re-sync finished: 2 of 2 done, 0 failed" in progress.text
    assert progress.headers["HX-Trigger"] == "resync-finished"
    assert "every 500ms" not in progress.text


def test_charts_count_calls_failures_and_api_usage(site: Site, manager: SignedIn) -> None:
    now = time.time()
    ended(site.engine, 1, "maya@example.com", started_at=int(now), tags=[{"name": "Sale"}])
    ended(site.engine, 2, "maya@example.com", started_at=int(now))
    ended(site.engine, 3, "leo@example.com", started_at=int(now) - 86_400)
    settle(site.engine, 3, "failed")
    with Session(site.engine) as s:
        s.add(ApiUsage(service="salesforce", used=1234, max=15000, updated_at=now))
        s.commit()
    figures = stats.charts(site.engine, zone="UTC", now=now)
    assert figures.calls_per_day[-2:] == [1, 2]
    assert figures.failures_per_day[-1] == 1
    assert figures.per_disposition == {"(none)": 2, "Sale": 1}
    assert figures.per_agent == {"maya@example.com": 2, "leo@example.com": 1}
    page = manager.client.get("/charts").text
    assert "1234 of 15000 used" in page
    assert "vendor/chart.umd.min.js" in page


def test_the_dashboard_socket_sends_a_snapshot_then_each_change(
    site: Site, manager: SignedIn
) -> None:
    ended(site.engine, 1, "maya@example.com")
    wait_for(site.app.state.live.listening.is_set)
    messages = asyncio.run(_watch(site.url, manager, lambda: _post_new_call(site.url, 2)))
    assert messages[0].startswith('<tbody id="live-calls" hx-swap-oob="true">')
    assert 'id="call-1"' in messages[0]
    assert '<section id="context-card"' in messages[1]
    assert messages[2].startswith('<tbody hx-swap-oob="afterbegin:#live-calls">')
    assert 'id="call-2"' in messages[2]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_dashboard_hears_of_calls_received_by_another_process(
    site: Site, manager: SignedIn, engine: Engine
) -> None:
    wait_for(site.app.state.live.listening.is_set)  # LISTEN is in place
    other = create_app(site.settings, engine=engine, worker=False)
    with serve(other) as second:
        messages = asyncio.run(_watch(site.url, manager, lambda: _post_new_call(second.url, 9)))
    assert 'id="call-9"' in messages[2]


# -- helpers ------------------------------------------------------------------------------


def _jobs(engine: Engine) -> list[Job]:
    with Session(engine) as s:
        return list(s.exec(select(Job).order_by(Job.call_id)))


def _finish_all(engine: Engine) -> None:
    with Session(engine) as s:
        s.execute(
            update(Job)
            .where(Job.status == "queued")
            .values(status="done", finished_at=time.time(), last_error=None)
        )
        s.commit()


def _post_new_call(base_url: str, call_id: int) -> None:
    body = envelope(
        "call.created",
        call_data(call_id, "maya@example.com", status="initial"),
        WEBHOOK_TOKEN,
    )
    assert post_webhook(base_url, body).status_code == 200


async def _watch(base_url: str, who: SignedIn, action: object) -> list[str]:
    """Connect as the browser would, take the snapshot, act, and take the first change."""
    cookie = "; ".join(f"{c.name}={c.value}" for c in who.client.cookies.jar)
    url = base_url.replace("http://", "ws://") + "/live"
    async with websockets.connect(
        url, additional_headers={"Cookie": cookie}, origin=base_url
    ) as socket:
        messages = [await asyncio.wait_for(socket.recv(), 5) for _ in range(2)]
        await asyncio.to_thread(action)  # type: ignore[arg-type]
        messages.append(await asyncio.wait_for(socket.recv(), 5))
    return [str(m) for m in messages]


def test_charts_show_the_days_asked_for_with_agents_by_name(site: Site, manager: SignedIn) -> None:
    day = 86_400
    start = int(datetime(2026, 3, 10, 12, tzinfo=UTC).timestamp())
    ended(site.engine, 1, "maya@example.com", started_at=start)
    ended(site.engine, 2, "maya@example.com", started_at=start + 2 * day)
    ended(site.engine, 3, "leo@example.com", started_at=start + 30 * day)  # outside the range
    with Session(site.engine) as s:
        s.add(AgentUser(email="maya@example.com", name="Maya Patel", fetched_at=0.0))
        s.commit()
    figures = stats.charts(site.engine, zone="UTC", first=date(2026, 3, 10), last=date(2026, 3, 16))
    assert figures.days[0] == "2026-03-10"
    assert len(figures.days) == 7
    assert figures.calls_per_day[:3] == [1, 0, 1]
    assert figures.per_agent == {"Maya Patel": 2}
    page = manager.client.get("/charts?from=2026-03-10&to=2026-03-16").text
    assert "2026-03-10 to 2026-03-16 (7 days)" in page
    assert "No sync failures in these days." in page
    assert manager.client.get("/charts?from=2026-13-40").status_code == 400
    # A range of years is cut to the newest 366 days, not refused.
    wide = stats.charts(site.engine, zone="UTC", first=date(2000, 1, 1), last=date(2026, 3, 16))
    assert len(wide.days) == stats.MAX_DAYS
