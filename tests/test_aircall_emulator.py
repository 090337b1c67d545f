"""The Aircall emulator over real loopback HTTP: REST rules, the edge, webhook deliveries."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrations.aircall.emulator import (
    ALL_EVENTS,
    Company,
    Fault,
    WebhookSender,
    create_app,
)
from integrations.aircall.traffic import DISPOSITIONS, generate_calls
from integrations.loopback import serve, wait_for

API_ID, API_TOKEN = "test-id", "test-token"
CALLER = "+442071838750"
T0 = 1_781_898_000  # a minute boundary


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0 + 10) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def company(clock: Clock) -> Company:
    return Company(api_id=API_ID, api_token=API_TOKEN, clock=clock)


@pytest.fixture
def agent(company: Company) -> dict:
    return company.add_user("Jane Agent", "jane@example.com")


@pytest.fixture
def line(company: Company) -> dict:
    return company.add_number("Support", "+14155550100")


@contextmanager
def api_client(company: Company) -> Iterator[httpx.Client]:
    with (
        serve(create_app(company)) as server,
        httpx.Client(base_url=server.url, auth=(API_ID, API_TOKEN), timeout=5) as client,
    ):
        yield client


@pytest.fixture
def api(company: Company) -> Iterator[httpx.Client]:
    with api_client(company) as client:
        yield client


@dataclass
class Receiver:
    """A webhook endpoint: records every delivery, answers ``replies`` in turn, then 200."""

    url: str = ""
    received: list[dict] = field(default_factory=list)
    replies: list[int] = field(default_factory=list)

    @property
    def events(self) -> list[str]:
        return [delivery["body"]["event"] for delivery in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    async def hook(request: Request) -> Response:
        state.received.append({"headers": dict(request.headers), "body": await request.json()})
        return Response(status_code=state.replies.pop(0) if state.replies else 200)

    with serve(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as server:
        state.url = server.url + "/hook"
        yield state


@pytest.fixture
def start_sender(company: Company) -> Iterator[Callable[..., WebhookSender]]:
    senders: list[WebhookSender] = []

    def start(**options: object) -> WebhookSender:
        sender = WebhookSender(company, **{"base_delay": 0.01, **options})
        sender.start()
        senders.append(sender)
        return sender

    yield start
    for sender in senders:
        sender.stop()


def live_call(company: Company, line: dict, agent: dict, **options: object) -> int:
    return company.start_call(
        direction="inbound",
        external=CALLER,
        number_id=line["id"],
        user_id=agent["id"],
        **options,
    )["id"]


# -- edge: auth, rate limit, routes, faults --------------------------------------------------


def test_missing_credentials_is_401_and_wrong_ones_403(api: httpx.Client) -> None:
    ping = f"{api.base_url}".rstrip("/") + "/v1/ping"
    anonymous = httpx.get(ping)
    wrong = httpx.get(ping, auth=(API_ID, "nope"))
    bearer = httpx.get(ping, headers={"Authorization": "Bearer abc"})

    assert (anonymous.status_code, anonymous.json()) == (401, {"message": "Unauthorized"})
    assert (wrong.status_code, wrong.json()) == (403, {"message": "Forbidden"})
    assert bearer.status_code == 403
    assert api.get("/v1/ping").json() == {"ping": "pong"}


def test_unknown_route_is_the_edge_404(api: httpx.Client) -> None:
    for response in (api.get("/v1/nothing"), api.delete("/v1/calls"), api.get("/v2/calls")):
        assert (response.status_code, response.json()) == (404, {"message": "Not Found"})


def test_rate_limit_per_company_with_headers_and_reset_at_the_next_minute(clock: Clock) -> None:
    company = Company(api_id=API_ID, api_token=API_TOKEN, rate_limit=3, clock=clock)
    with api_client(company) as api:
        remaining = [api.get("/v1/ping").headers["X-AircallApi-Remaining"] for _ in range(3)]
        refused = api.get("/v1/ping")
        clock.now += 60
        next_minute = api.get("/v1/ping")

    assert remaining == ["2", "1", "0"]
    assert refused.status_code == 429
    assert refused.headers["X-AircallApi-Limit"] == "3"
    assert refused.headers["X-AircallApi-Remaining"] == "0"
    assert refused.headers["X-AircallApi-Reset"] == str(T0 + 60)
    assert refused.json()["error"] == "Too Many Requests"
    assert "troubleshoot" in refused.json()
    assert next_minute.status_code == 200
    assert next_minute.headers["X-AircallApi-Reset"] == str(T0 + 120)
    assert company.requests_made == 4


def test_injected_faults_hit_matching_requests_then_stop(
    company: Company, api: httpx.Client
) -> None:
    control = api.post("/__emulator/faults", json={"path": "^/v1/ping$", "status": 503})
    company.faults.add(Fault(method="GET", path="/v1/users", status=429, reset=T0 + 999))
    company.faults.add(Fault(path="/v1/tags", kind="drop"))
    company.faults.add(Fault(path="/v1/contacts", kind="delay", delay=0.2))

    failing, recovered = api.get("/v1/ping"), api.get("/v1/ping")
    throttled = api.get("/v1/users")
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("/v1/tags")
    began = time.monotonic()
    slow = api.get("/v1/contacts")

    assert control.status_code == 201
    assert (failing.status_code, recovered.status_code) == (503, 200)
    assert throttled.status_code == 429
    assert throttled.headers["X-AircallApi-Remaining"] == "0"
    assert throttled.headers["X-AircallApi-Reset"] == str(T0 + 999)
    assert slow.status_code == 200
    assert time.monotonic() - began >= 0.2
    assert api.get("/v1/tags").status_code == 200
    assert api.delete("/__emulator/faults").status_code == 204


# -- calls ------------------------------------------------------------------------------------


def test_calls_are_paged_with_links_and_capped(
    company: Company, api: httpx.Client, line: dict, agent: dict
) -> None:
    for second in range(120):
        live_call(company, line, agent, at=T0 + second)

    first = api.get("/v1/calls", params={"per_page": 50}).json()
    second = httpx.get(first["meta"]["next_page_link"], auth=(API_ID, API_TOKEN)).json()
    last = api.get("/v1/calls", params={"per_page": 50, "page": 3}).json()
    newest = api.get("/v1/calls", params={"order": "desc", "per_page": 1}).json()
    window = api.get("/v1/calls", params={"from": T0 + 10, "to": T0 + 19}).json()

    assert (first["meta"]["count"], first["meta"]["total"]) == (50, 120)
    assert first["meta"]["previous_page_link"] is None
    assert second["meta"]["current_page"] == 2
    assert second["calls"][0]["started_at"] == T0 + 50
    assert (last["meta"]["count"], last["meta"]["next_page_link"]) == (20, None)
    assert newest["calls"][0]["started_at"] == T0 + 119
    assert [c["started_at"] for c in window["calls"]] == list(range(T0 + 10, T0 + 20))
    for params in ({"per_page": 0}, {"per_page": 51}, {"page": 201, "per_page": 50}):
        refused = api.get("/v1/calls", params=params)
        assert refused.status_code == 400
        assert set(refused.json()) == {"error", "troubleshoot"}
    assert api.get("/v1/calls", params={"page": 200, "per_page": 50}).status_code == 200


def test_call_shows_contact_only_when_fetched_and_search_filters(
    company: Company, api: httpx.Client, line: dict, agent: dict
) -> None:
    contact = company.add_contact("Gary", "Jennings", ["+44 20 7183 8750"])
    inbound = live_call(company, line, agent, at=T0)
    outbound = company.start_call(
        direction="outbound", external="+33612345678", number_id=line["id"], user_id=agent["id"]
    )["id"]

    plain = api.get(f"/v1/calls/{inbound}").json()["call"]
    fetched = api.get(f"/v1/calls/{inbound}", params={"fetch_contact": "true"}).json()["call"]
    by_phone = api.get("/v1/calls/search", params={"phone_number": "+442071838750"}).json()
    by_direction = api.get("/v1/calls/search", params={"direction": "outbound"}).json()
    by_user = api.get("/v1/calls/search", params={"user_id": agent["id"]}).json()

    assert plain["contact"] is None
    assert fetched["contact"]["id"] == contact["id"]
    assert plain["raw_digits"] == "+44 20 7183 8750"
    assert [c["id"] for c in by_phone["calls"]] == [inbound]
    assert [c["id"] for c in by_direction["calls"]] == [outbound]
    assert by_user["meta"]["total"] == 2
    assert api.get("/v1/calls/1").status_code == 404


def test_sixth_comment_is_refused(company: Company, api: httpx.Client, line, agent) -> None:
    call_id = live_call(company, line, agent)

    posted = [
        api.post(f"/v1/calls/{call_id}/comments", json={"content": f"n{i}"}) for i in range(5)
    ]
    sixth = api.post(f"/v1/calls/{call_id}/comments", json={"content": "one more"})

    assert [r.status_code for r in posted] == [201] * 5
    assert sixth.status_code == 400
    assert sixth.json()["troubleshoot"] == "Maximum of 5 notes can be added to a Call."
    comments = company.calls[call_id]["comments"]
    assert [c["content"] for c in comments] == ["n0", "n1", "n2", "n3", "n4"]
    assert all(c["posted_by"] is None for c in comments)


def test_tags_are_set_by_existing_id_and_add_to_the_call(
    company: Company, api: httpx.Client, line, agent
) -> None:
    call_id = live_call(company, line, agent)
    defaults = {t["name"] for t in api.get("/v1/tags").json()["tags"]}
    interested = api.post("/v1/tags", json={"name": "Interested", "color": "#00B388"})
    duplicate = api.post("/v1/tags", json={"name": "interested", "color": "#00B388"})
    follow_up = next(t for t in company.tags.values() if t["name"] == "Follow Up")

    unknown = api.post(f"/v1/calls/{call_id}/tags", json={"tags": [999]})
    by_name = api.post(f"/v1/calls/{call_id}/tags", json={"tags": ["Interested"]})
    first = api.post(f"/v1/calls/{call_id}/tags", json={"tags": [interested.json()["tag"]["id"]]})
    second = api.post(f"/v1/calls/{call_id}/tags", json={"tags": [follow_up["id"]]})

    assert defaults == {
        "Callback Request",
        "Called Back",
        "Conference",
        "Follow Up",
        "Voicemail Drop",
        "Voice Virtual Agent",
    }
    assert (interested.status_code, duplicate.status_code) == (201, 400)
    assert (unknown.status_code, by_name.status_code) == (400, 400)
    assert (first.status_code, second.status_code) == (201, 201)
    tags = company.calls[call_id]["tags"]
    assert [t["name"] for t in tags] == ["Interested", "Follow Up"]
    assert tags[0]["tagged_by"] == {}


def test_insight_card_accepted_while_live_refused_once_done(
    company: Company, api: httpx.Client, line, agent
) -> None:
    call_id = live_call(company, line, agent, at=T0)
    card = {
        "contents": [
            {"type": "title", "text": "Acme Corp", "link": "https://acme.example/001"},
            {"type": "shortText", "label": "Open cases", "text": "2"},
            {"type": "user", "label": "Owner", "user_id": agent["id"]},
        ]
    }
    ringing = api.post(f"/v1/calls/{call_id}/insight_cards", json=card)
    company.answer(call_id, at=T0 + 5)
    answered = api.post(f"/v1/calls/{call_id}/insight_cards", json=card)
    invalid = [
        {"contents": []},
        {"contents": [{"type": "paragraph", "text": "x"}]},
        {"contents": [{"type": "title"}]},
        {"contents": [{"type": "user", "user_id": 1}]},
        {"contents": [{"type": "title", "text": "a"}, {"type": "title", "text": "b"}]},
    ]
    refusals = [api.post(f"/v1/calls/{call_id}/insight_cards", json=b) for b in invalid]
    company.hangup(call_id, at=T0 + 60)
    done = api.post(f"/v1/calls/{call_id}/insight_cards", json=card)
    unknown = api.post("/v1/calls/1/insight_cards", json=card)

    assert (ringing.status_code, ringing.content) == (201, b"")
    assert answered.status_code == 201
    assert [r.status_code for r in refusals] == [400] * len(invalid)
    assert done.status_code == 400
    assert set(done.json()) == {"error", "troubleshoot"}
    assert unknown.status_code == 404
    assert [c["call_id"] for c in company.insight_cards] == [call_id, call_id]
    assert company.insight_cards[0]["contents"] == card["contents"]
    shown = api.get("/__emulator/insight_cards").json()["insight_cards"]
    assert len(shown) == 2


# -- contacts ---------------------------------------------------------------------------------


def test_contact_needs_labelled_phone_numbers_at_most_twenty(
    company: Company, api: httpx.Client
) -> None:
    phone = {"label": "Work", "value": "+19001112222"}
    bodies = [
        {"first_name": "Gary"},
        {"first_name": "Gary", "phone_numbers": []},
        {"first_name": "Gary", "phone_numbers": [{"value": "+19001112222"}]},
        {"first_name": "Gary", "phone_numbers": [{"label": "Work", "value": "not a phone"}]},
        {"first_name": "Gary", "phone_numbers": [phone] * 21},
        {"phone_numbers": [phone], "emails": [{"label": "Work", "value": "g@acme.com"}] * 21},
    ]
    refusals = [api.post("/v1/contacts", json=body) for body in bodies]
    created = api.post(
        "/v1/contacts",
        json={
            "first_name": "Gary",
            "last_name": "Jennings",
            "information": "sfdc_id:003XX",
            "phone_numbers": [phone],
            "emails": [{"label": "Office", "value": "gary@acme.com"}],
        },
    )

    assert [r.status_code for r in refusals] == [400] * len(bodies)
    assert all(set(r.json()) == {"error", "troubleshoot"} for r in refusals)
    assert created.status_code == 201
    contact = created.json()["contact"]
    assert contact["phone_numbers"][0]["id"] != contact["emails"][0]["id"]
    assert contact["is_shared"] is True
    assert isinstance(contact["created_at"], int)
    assert list(company.contacts) == [contact["id"]]


def test_contact_search_compares_e164_digits(company: Company, api: httpx.Client) -> None:
    gary = company.add_contact("Gary", "J", ["+1 (900) 111-2222"], ["Gary@Acme.com"])
    company.add_contact("Other", "Person", ["+19001112223"])

    def found(**params: str) -> list[int]:
        response = api.get("/v1/contacts/search", params=params)
        return [c["id"] for c in response.json()["contacts"]]

    assert found(phone_number="+19001112222") == [gary["id"]]
    assert found(phone_number="19001112222") == [gary["id"]]
    assert found(phone_number="+1 900-111-2222") == [gary["id"]]
    assert found(phone_number="9001112222") == []  # no partial match
    assert found(email="gary@acme.com") == [gary["id"]]
    assert found(email="gary@acme.com", phone_number="+19001112223") == []
    assert api.get("/v1/contacts/search").status_code == 400


def test_contact_update_takes_scalars_only_and_delete_is_204(
    company: Company, api: httpx.Client
) -> None:
    contact = company.add_contact("Gary", "J", ["+19001112222"])
    path = f"/v1/contacts/{contact['id']}"

    updated = api.post(path, json={"information": "sfdc_id:003YY"})
    refused = api.post(path, json={"phone_numbers": [{"label": "Work", "value": "+1900"}]})
    deleted = api.delete(path)

    assert updated.json()["contact"]["information"] == "sfdc_id:003YY"
    assert refused.status_code == 400
    assert deleted.status_code == 204
    assert api.get(path).status_code == 404
    assert company.contacts == {}


# -- users, dialer, webhooks over REST --------------------------------------------------------


def test_dialer_campaign_numbers_are_queued_per_user(
    company: Company, api: httpx.Client, agent: dict
) -> None:
    path = f"/v1/users/{agent['id']}/dialer_campaign/phone_numbers"
    before = api.get(path)
    queued = api.post(path, json={"phone_numbers": ["+1 415 555 0199", "+33612345678"]})
    again = api.post(path, json={"phone_numbers": ["+14155550199"]})
    invalid = api.post(path, json={"phone_numbers": ["nope"]})
    unknown_user = api.post(
        "/v1/users/1/dialer_campaign/phone_numbers", json={"phone_numbers": ["+33612345678"]}
    )

    assert before.status_code == 404
    assert (queued.status_code, queued.content) == (204, b"")
    assert (again.status_code, invalid.status_code) == (422, 400)
    assert unknown_user.status_code == 404
    assert company.dialer_campaigns == {agent["id"]: ["+14155550199", "+33612345678"]}
    assert [n["number"] for n in api.get(path).json()["numbers"]] == [
        "+14155550199",
        "+33612345678",
    ]
    assert api.get(f"/v1/users/{agent['id']}").json()["user"]["email"] == "jane@example.com"
    assert api.get("/v1/users").json()["meta"]["total"] == 1


def test_webhooks_over_rest_need_https_and_known_events(api: httpx.Client) -> None:
    plain_http = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    bad_event = api.post(
        "/v1/webhooks", json={"url": "https://hooks.example/a", "events": ["call.exploded"]}
    )
    created = api.post(
        "/v1/webhooks", json={"url": "https://hooks.example/a", "events": ["call.created"]}
    )
    webhook = created.json()["webhook"]
    path = f"/v1/webhooks/{webhook['webhook_id']}"
    fetched = api.get(path).json()["webhook"]
    added = api.put(path, params={"events_action": "add"}, json={"events": ["call.ended"]})
    reset = api.put(path, json={"custom_name": "renamed"})

    assert (plain_http.status_code, bad_event.status_code, created.status_code) == (400, 400, 201)
    assert re.fullmatch(r"[0-9a-f]{32}", webhook["token"])
    assert webhook["active"] is True
    assert fetched["token"] == webhook["token"]
    assert added.json()["webhook"]["events"] == ["call.created", "call.ended"]
    assert sorted(reset.json()["webhook"]["events"]) == sorted(ALL_EVENTS)
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404


def test_state_endpoint_shows_what_the_company_holds(
    company: Company, api: httpx.Client, line, agent
) -> None:
    call_id = live_call(company, line, agent)
    api.get("/v1/ping")

    state = httpx.get(f"{api.base_url}".rstrip("/") + "/__emulator/state").json()

    assert [c["id"] for c in state["calls"]] == [call_id]
    assert state["requests_made"] == company.requests_made == 1


# -- webhook deliveries -----------------------------------------------------------------------


def test_answered_call_delivers_lifecycle_envelopes_in_order(
    company: Company, receiver: Receiver, start_sender, line, agent
) -> None:
    token = "5f3113f7bebf210a49299a1b58ffd2bc"
    company.add_webhook(receiver.url, token=token)
    sender = start_sender()
    call_id = live_call(company, line, agent, at=T0)
    company.answer(call_id, at=T0 + 8)
    company.hangup(call_id, at=T0 + 68)
    company.end(call_id)
    company.tag(call_id, "Follow Up", user_id=agent["id"])
    company.comment(call_id, "Wants a quote \N{GRINNING FACE}", user_id=agent["id"])
    company.summary(call_id, "The caller wants a quote.")
    sender.drain(5)

    bodies = [delivery["body"] for delivery in receiver.received]
    assert receiver.events == [
        "call.created",
        "call.ringing_on_agent",
        "call.answered",
        "call.hungup",
        "call.ended",
        "call.tagged",
        "call.commented",
        "summary.created",
    ]
    assert all(list(b) == ["resource", "event", "timestamp", "token", "data"] for b in bodies)
    assert {b["token"] for b in bodies} == {token}
    created, ringing, answered, hungup, ended, tagged, commented, summary = bodies
    assert "user" not in created["data"]
    assert "contact" not in created["data"]
    assert created["data"]["status"] == "initial"
    assert created["data"]["call_uuid"].startswith("CA")
    assert ringing["data"]["user"]["id"] == agent["id"]
    assert answered["data"]["answered_at"] == T0 + 8
    assert (hungup["data"]["status"], hungup["data"]["duration"]) == ("done", 68)
    assert hungup["data"]["recording"] is None
    assert ended["data"]["recording"].endswith(".mp3?X-Amz-Expires=600")
    assert tagged["data"]["tags"][0]["tagged_by"]["id"] == agent["id"]
    assert commented["data"]["comments"][0]["content"] == "Wants a quote "
    assert summary["resource"] == "summary"
    assert set(summary["data"]) == {"id", "call_id", "created_at", "content"}
    headers = receiver.received[0]["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "axios/1.7.7"
    assert headers["aircall-origin"] == "webhooks"
    assert all(d["delivered"] and d["attempts"] == 1 for d in company.deliveries)


def test_missed_call_with_voicemail_and_matched_contact(
    company: Company, receiver: Receiver, start_sender, line, agent
) -> None:
    company.add_webhook(receiver.url, events=["call.hungup", "call.voicemail_left"])
    contact = company.add_contact("Gary", "Jennings", [CALLER])
    sender = start_sender()
    call_id = live_call(company, line, agent, at=T0)
    company.hangup(call_id, at=T0 + 40, voicemail=True)
    company.end(call_id)
    sender.drain(5)

    hungup, voicemail = (d["body"]["data"] for d in receiver.received)
    assert receiver.events == ["call.hungup", "call.voicemail_left"]
    assert hungup["missed_call_reason"] == "agents_did_not_answer"
    assert hungup["contact"]["id"] == contact["id"]
    assert voicemail["voicemail"].endswith("voicemail.mp3?X-Amz-Expires=600")
    assert voicemail["asset"].endswith("/voicemail")


def test_failed_delivery_is_retried_until_a_2xx(
    company: Company, receiver: Receiver, start_sender, line, agent
) -> None:
    company.add_webhook(receiver.url, events=["call.created"])
    receiver.replies = [500, 503]
    sender = start_sender()
    live_call(company, line, agent)
    sender.drain(5)

    assert receiver.events == ["call.created"] * 3
    (delivery,) = company.deliveries
    assert (delivery["attempts"], delivery["last_status"], delivery["delivered"]) == (3, 200, True)


def test_webhook_disabled_after_consecutive_failures_and_reenabled_by_put(
    company: Company, api: httpx.Client, receiver: Receiver, start_sender, line, agent
) -> None:
    webhook = company.add_webhook(receiver.url, events=["call.created", "call.answered"])
    receiver.replies = [500] * 3
    sender = start_sender(max_attempts=3, disable_after=3)
    call_id = live_call(company, line, agent, at=T0)
    sender.drain(5)
    disabled = company.webhooks[webhook["webhook_id"]]["active"]
    company.answer(call_id, at=T0 + 1)  # nothing queued for a disabled webhook
    reenabled = api.put(f"/v1/webhooks/{webhook['webhook_id']}", json={"active": True})

    assert disabled is False
    assert len(receiver.received) == 3
    assert [(d["attempts"], d["given_up"]) for d in company.deliveries] == [(3, True)]
    assert reenabled.json()["webhook"]["active"] is True


def test_duplicate_switch_and_redeliver_send_the_same_envelope_again(
    company: Company, receiver: Receiver, start_sender, line, agent
) -> None:
    company.add_webhook(receiver.url, events=["call.created"])
    company.duplicate_next = 1
    sender = start_sender()
    live_call(company, line, agent)
    live_call(company, line, agent)
    sender.drain(5)
    company.redeliver(0)
    sender.drain(5)

    bodies = [d["body"] for d in receiver.received]
    assert len(bodies) == 4
    assert bodies[0] == bodies[1] == bodies[3] != bodies[2]
    assert [d["duplicate_of"] for d in company.deliveries] == [None, 0, None, 0]


def test_shuffle_delivers_every_event_out_of_order(
    company: Company, receiver: Receiver, start_sender, line, agent
) -> None:
    company.add_webhook(receiver.url, events=["call.created"])
    company.shuffle = True
    emitted = [live_call(company, line, agent) for _ in range(8)]
    sender = start_sender(seed=3, shuffle_window=0)
    sender.drain(5)

    received = [d["body"]["data"]["id"] for d in receiver.received]
    assert sorted(received) == emitted
    assert received != emitted


def test_generated_traffic_runs_whole_lifecycles(
    company: Company, receiver: Receiver, start_sender, line
) -> None:
    agents = [company.add_user(f"Agent {i}", f"agent{i}@example.com")["id"] for i in range(3)]
    company.add_webhook(receiver.url)
    sender = start_sender()
    stop = threading.Event()

    call_ids = generate_calls(
        company,
        sender,
        callers=[CALLER, "+33612345678", "+14155550199"],
        agents=agents,
        number_id=line["id"],
        count=20,
        seed=11,
        time_scale=0,
        stop=stop,
    )

    assert len(call_ids) == 20
    assert all(company.calls[i]["status"] == "done" for i in call_ids)
    ended = {
        d["body"]["data"]["id"] for d in receiver.received if d["body"]["event"] == "call.ended"
    }
    assert ended == set(call_ids)
    tags = {t["name"] for i in call_ids for t in company.calls[i]["tags"]}
    assert len(tags) > 1
    assert tags <= set(DISPOSITIONS)
    assert wait_for(lambda: len(receiver.received) == len(company.deliveries), timeout=5)


def test_traffic_on_the_real_clock_is_stamped_when_it_is_played(company: Company, line) -> None:
    """The demo's calls: their times are the moments they happened, not a compressed history."""
    agent = company.add_user("Agent", "agent@example.com")["id"]
    began = company.clock()
    call_ids = generate_calls(
        company,
        None,
        callers=[CALLER],
        agents=[agent],
        number_id=line["id"],
        count=3,
        seed=11,
        time_scale=0.002,
        real_clock=True,
    )
    finished = company.clock()
    for call_id in call_ids:
        call = company.calls[call_id]
        assert int(began) <= call["started_at"] <= call["ended_at"] <= finished + 1
