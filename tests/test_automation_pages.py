"""The automation builder and the manager's settings pages over real HTTP: automations (create,
edit, dry run, enable, restore), field mappings and disposition rules checked against the
Salesforce emulator's describe, agents' Users, untagged calls, the backfill button; access,
CSRF and escaping."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, select

from integrations.aircall.events import parse
from integrations.loopback import wait_for
from integrations.store.automation_models import Automation, DispositionRule, FieldMapping
from integrations.store.models import AgentUser, Event, Job, OrgFact
from integrations.sync.automations import definitions, dispositions
from integrations.sync.callers.matching import set_agent_user
from integrations.sync.calls import untagged
from integrations.sync.intake import deliveries
from integrations.sync.jobs import kinds, queue
from integrations.sync.jobs.worker import make_context
from integrations.sync.recovery import backfill, backfill_job
from integrations.sync.runtime import HANDLERS
from tests.conftest import WEBHOOK_TOKEN, Stack
from tests.helpers import AGENT_EMAIL, answered_inbound_call, envelope
from tests.signin import PASSWORD, SignedIn, Site, sign_in

CALLER = "+14155550100"
MANAGER = "sam@example.com"
HOSTILE = '<script>alert("x")</script>'


def manager_of(stack: Stack) -> SignedIn:
    from integrations.store import accounts

    accounts.add_user(stack.engine, MANAGER, "manager", PASSWORD)
    return sign_in(stack.app.url, MANAGER)


def one_ended_call(stack: Stack) -> int:
    """A real call.ended delivery, stored: the builder previews against it."""
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    call_id = answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
    stack.sender.drain(timeout=10)
    wait_for(lambda: _event(stack.engine, "call.ended"), timeout=10)
    return call_id


def _event(engine: Engine, name: str) -> Event | None:
    with Session(engine) as s:
        return s.exec(select(Event).where(Event.name == name)).first()


def _automation(engine: Engine, automation_id: int) -> Automation:
    with Session(engine) as s:
        found = s.get(Automation, automation_id)
        assert found is not None
        return found


def _names(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return sorted(s.exec(select(Automation.name)).all())


def _form(manager: SignedIn, **fields: str) -> dict[str, str]:
    return {"csrf_token": manager.csrf, **fields}


LEAD_STEP = {
    "name": "Lead from every inbound call",
    "trigger": "E12",
    "cond-direction": "inbound",
    "step-0-action": "salesforce:A04",
    "step-0-field-0-target": "Description",
    "step-0-field-0-source": "Call {{call.id}} from {{contact_phone}}",
    "step-0-use_mapping": "yes",
}


def test_a_manager_builds_dry_runs_enables_edits_and_restores_an_automation(
    stack: Stack,
) -> None:
    call_id = one_ended_call(stack)
    manager = manager_of(stack)

    page = manager.client.get("/automations/new").text
    for code in ("E04", "E13", "T05", "salesforce:A19", "aircall:A06", "aircall:A04"):
        assert code in page
    assert '<option value="CallDurationInSeconds">' in page  # Task fields, from describe

    dry = manager.client.post("/automations/new", data=_form(manager, **LEAD_STEP, op="dry_run"))
    assert dry.status_code == 200
    assert '<h2 id="preview-heading">Dry run' in dry.text
    assert "Would create a Lead in Salesforce" in dry.text
    assert f"Call {call_id} from {CALLER}" in dry.text  # rendered from the stored event
    assert "Unknown (Aircall)" in dry.text  # the Lead mapping's Company, underneath
    assert stack.org.records("Lead") == []  # nothing sent

    live = manager.client.post(
        "/automations/preview",
        data=_form(manager, **{**LEAD_STEP, "cond-direction": "outbound"}),
        headers={"HX-Request": "true"},
    )
    assert "Conditions not met: direction is &#39;inbound&#39;" in live.text

    saved = manager.client.post("/automations/new", data=_form(manager, **LEAD_STEP, op="save"))
    assert saved.status_code == 303
    automation_id = int(re.fullmatch(r"/automations/(\d+)\?saved=1", saved.headers["location"])[1])
    stored = definitions.definition(stack.engine, automation_id)
    assert stored["conditions"] == {"direction": "inbound"}
    assert stored["actions"] == [
        {
            "action": "salesforce:A04",
            "fields": {"Description": "Call {{call.id}} from {{contact_phone}}"},
        }
    ]
    assert not _automation(stack.engine, automation_id).enabled  # saved disabled, to dry-run

    enabled = manager.client.post(
        f"/automations/{automation_id}/enabled", data=_form(manager, enabled="true")
    )
    assert enabled.status_code == 303
    assert _automation(stack.engine, automation_id).enabled

    edited = manager.client.post(
        f"/automations/{automation_id}",
        data=_form(manager, **{**LEAD_STEP, "name": "Renamed"}, version="2", op="save"),
    )
    assert edited.status_code == 303
    current = _automation(stack.engine, automation_id)
    assert (current.name, current.version, current.enabled) == ("Renamed", 3, True)

    stale = manager.client.post(
        f"/automations/{automation_id}",
        data=_form(manager, **{**LEAD_STEP, "name": "Lost update"}, version="2", op="save"),
    )
    assert stale.status_code == 400
    assert "Someone saved version 3" in stale.text
    assert _automation(stack.engine, automation_id).name == "Renamed"

    restored = manager.client.post(
        f"/automations/{automation_id}/restore", data=_form(manager, version="2")
    )
    assert restored.status_code == 303
    current = _automation(stack.engine, automation_id)
    assert (current.name, current.version, current.enabled) == (LEAD_STEP["name"], 4, True)
    page = manager.client.get(f"/automations/{automation_id}").text
    assert "restored version 2" in page
    assert page.count("Restore v") == 3


def test_a_broken_automation_is_refused_with_the_reason_and_the_form_kept(
    site: Site,
) -> None:
    manager = site.user(MANAGER, "manager")
    before = _names(site.engine)
    form = {
        **LEAD_STEP,
        "step-0-action": "salesforce:A19",
        "step-0-query": "DELETE FROM Lead WHERE Name = 'x'",
    }
    answer = manager.client.post("/automations/new", data=_form(manager, **form, op="save"))
    assert answer.status_code == 400
    assert "only a SELECT statement can run" in answer.text
    assert "DELETE FROM Lead WHERE Name = &#39;x&#39;" in answer.text  # kept for fixing
    nameless = manager.client.post(
        "/automations/new", data=_form(manager, **{**LEAD_STEP, "name": " "}, op="save")
    )
    assert "an automation needs a name" in nameless.text
    assert _names(site.engine) == before


def test_editing_buttons_add_move_and_remove_steps_without_saving(site: Site) -> None:
    manager = site.user(MANAGER, "manager")
    before = _names(site.engine)
    added = manager.client.post("/automations/new", data=_form(manager, **LEAD_STEP, op="add_step"))
    assert 'name="step-1-action"' in added.text
    two = {**LEAD_STEP, "step-1-action": "aircall:A04", "step-1-text": "Logged {{call.id}}"}
    moved = manager.client.post(
        "/automations/new",
        data=_form(manager, **two, op="up-1"),
        headers={"HX-Request": "true"},
    )
    assert moved.text.startswith('<div id="automation-editor"')  # the fragment only
    assert "<legend>Step 1 · Add Comment to Call" in moved.text
    assert "<legend>Step 2 · Create Lead" in moved.text
    removed = manager.client.post(
        "/automations/new", data=_form(manager, **two, op="remove_step-0")
    )
    assert 'name="step-1-action"' not in removed.text
    assert "Logged {{call.id}}" in removed.text
    assert _names(site.engine) == before


BUILDER_GETS = [
    "/automations",
    "/automations/new",
    "/automations/1",
    "/automations/mappings",
    "/automations/mappings/Lead",
    "/automations/dispositions",
    "/settings/agents",
    "/untagged",
]
BUILDER_POSTS = [
    "/automations/new",
    "/automations/preview",
    "/automations/1",
    "/automations/1/enabled",
    "/automations/1/restore",
    "/automations/mappings/Lead",
    "/automations/dispositions/interested",
    "/settings/agents",
    "/settings/backfill",
]


def test_an_agent_gets_403_on_every_builder_route(site: Site) -> None:
    first = definitions.save(site.engine, {**LEAD_BODY, "enabled": True}, by="x")
    agent = site.user("maya@example.com", "agent")
    for path in BUILDER_GETS:
        path = path.replace("/1", f"/{first.id}")
        assert agent.client.get(path).status_code == 403, path
    for path in BUILDER_POSTS:
        path = path.replace("/1", f"/{first.id}")
        answer = agent.client.post(
            path,
            data={"csrf_token": agent.csrf, "enabled": "false", "version": "1", "op": "save"},
        )
        assert answer.status_code == 403, path
    assert _automation(site.engine, first.id).version == 1  # nothing changed
    assert "/automations" not in agent.client.get("/").text  # and no link to it
    with httpx.Client(base_url=site.url) as signed_out:  # signed out: sent to sign in
        assert signed_out.get("/automations").status_code == 303


LEAD_BODY = {
    "name": "Lead for every call",
    "trigger": "E12",
    "actions": [{"action": "salesforce:A04"}],
}


def test_a_post_without_the_csrf_token_is_refused(site: Site) -> None:
    manager = site.user(MANAGER, "manager")
    automation = definitions.save(site.engine, {**LEAD_BODY, "enabled": False}, by="x")
    answers = [
        manager.client.post("/automations/new", data={**LEAD_STEP, "op": "save"}),
        manager.client.post(f"/automations/{automation.id}/enabled", data={"enabled": "true"}),
        manager.client.post(
            f"/automations/{automation.id}/enabled",
            data={"enabled": "true", "csrf_token": "forged"},
        ),
        manager.client.post("/settings/agents", data={"email": AGENT_EMAIL, "user_id": ""}),
    ]
    assert [a.status_code for a in answers] == [403, 403, 403, 403]
    assert "did not come from this site" in answers[0].text
    assert not _automation(site.engine, automation.id).enabled
    assert LEAD_STEP["name"] not in _names(site.engine)


def test_hostile_names_render_as_text(site: Site) -> None:
    manager = site.user(MANAGER, "manager")
    automation = definitions.save(site.engine, {**LEAD_BODY, "name": HOSTILE}, by=HOSTILE)
    set_agent_user(site.engine, f"x{HOSTILE}@example.com".replace(" ", ""), None)
    with Session(site.engine) as s:
        s.add(AgentUser(email="evil@example.com", fetched_at=time.time(), name=HOSTILE))
        s.commit()
    definitions.seed_defaults(site.engine)
    dispositions.set_rule(site.engine, "busy", by="x", tags=[HOSTILE], lead_status=HOSTILE)
    pages = [
        manager.client.get("/automations").text,
        manager.client.get(f"/automations/{automation.id}").text,
        manager.client.get("/settings/agents").text,
        manager.client.get("/automations/dispositions").text,
        manager.client.post(
            "/automations/new", data=_form(manager, **{**LEAD_STEP, "name": HOSTILE}, op="refresh")
        ).text,
    ]
    for page in pages:
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(" in page


def test_a_mapping_is_checked_against_the_orgs_describe_before_it_is_kept(
    stack: Stack,
) -> None:
    one_ended_call(stack)
    manager = manager_of(stack)
    page = manager.client.get("/automations/mappings/Lead").text
    assert '<option value="Company">' in page
    assert "Unknown (Aircall)" in page  # the preview from the stored call
    bad = {
        "row-0-target": "LastName",
        "row-0-source": "contact_name|last || =Unknown",
        "row-1-target": "Status",
        "row-1-source": "=Hot",
        "row-2-target": "Favourite_Colour__c",
        "row-2-source": "=blue",
    }
    refused = manager.client.post(
        "/automations/mappings/Lead", data=_form(manager, **bad, op="save")
    )
    assert refused.status_code == 400
    assert "Not saved" in refused.text
    assert "&#39;Hot&#39; is not a value of this picklist" in refused.text
    assert "no such field in this org" in refused.text
    assert "required, and not mapped" in refused.text  # Company
    with Session(stack.engine) as s:
        assert s.get(FieldMapping, "Lead") is None

    good = {
        "row-0-target": "LastName",
        "row-0-source": "contact_name|last || =Unknown",
        "row-1-target": "Company",
        "row-1-source": "=Acme",
        "row-2-target": "Status",
        "row-2-source": "=Working - Contacted",
        "row-3-target": "",
        "row-3-source": "",
    }
    kept = manager.client.post("/automations/mappings/Lead", data=_form(manager, **good, op="save"))
    assert kept.status_code == 303
    with Session(stack.engine) as s:
        row = s.get(FieldMapping, "Lead")
        assert row is not None
        assert row.mapping == {
            "LastName": "contact_name|last || =Unknown",
            "Company": "=Acme",
            "Status": "=Working - Contacted",
        }
        assert row.updated_by == MANAGER


def test_disposition_targets_missing_from_the_org_are_named_and_a_rule_is_edited(
    stack: Stack,
) -> None:
    manager = manager_of(stack)
    page = manager.client.get("/automations/dispositions").text
    assert "<li>Interested: Lead Status has no value &#39;Qualified&#39;" in page
    assert '<option value="Working - Contacted">' in page  # the org's Lead statuses
    answer = manager.client.post(
        "/automations/dispositions/interested",
        data=_form(
            manager,
            name="Interested",
            tags="Interested, Hot lead",
            lead_status="Working - Contacted",
            opportunity_stage="Qualification",
            contact_status="",
            enabled="on",
        ),
    )
    assert answer.status_code == 303
    with Session(stack.engine) as s:
        rule = s.get(DispositionRule, "interested")
        assert rule is not None
        assert (rule.tags, rule.lead_status, rule.opportunity_stage, rule.updated_by) == (
            ["Interested", "Hot lead"],
            "Working - Contacted",
            "Qualification",
            MANAGER,
        )
    after = manager.client.get("/automations/dispositions").text
    assert "<li>Interested: Lead Status" not in after
    assert "<li>Not Interested: Lead Status" in after  # the rules not yet mapped stay listed


def test_a_manager_maps_an_unmapped_agent_to_a_salesforce_user(stack: Stack) -> None:
    manager = manager_of(stack)
    user_id = stack.org.add_user("Maya Patel", "maya.sf@example.com")
    set_agent_user(stack.engine, "maya@example.com", None)
    page = manager.client.get("/settings/agents").text
    assert "1 agent without a Salesforce User" in page
    assert f'<option value="{user_id}">Maya Patel' in page

    def post(**fields: str) -> int:
        data = _form(manager, email="maya@example.com", **fields)
        return manager.client.post("/settings/agents", data=data).status_code

    assert post(user_id="00Q000000000001AAA", op="save") == 400  # a Lead id, not a User
    assert post(user_id="005000000000999AAA", op="save") == 400  # no such active User
    assert post(user_id=user_id, op="save") == 303
    with Session(stack.engine) as s:
        row = s.get(AgentUser, "maya@example.com")
        assert row is not None
        assert (row.sf_user_id, row.manual) == (user_id, True)
    assert "without a Salesforce User" not in manager.client.get("/settings/agents").text
    assert post(op="clear") == 303
    with Session(stack.engine) as s:
        assert s.get(AgentUser, "maya@example.com").sf_user_id is None


def _ended(engine: Engine, call_id: int, agent: str, *, tags: list, answered: bool = True) -> None:
    data = {
        "id": call_id,
        "direction": "inbound",
        "status": "done",
        "started_at": 1_764_000_000 + call_id,
        "answered_at": 1_764_000_005 + call_id if answered else None,
        "duration": 30,
        "raw_digits": CALLER,
        "user": {"id": 1, "name": agent.split("@")[0].title(), "email": agent},
        "tags": tags,
    }
    event = parse(envelope("call.ended", data, WEBHOOK_TOKEN, 1), [SecretStr(WEBHOOK_TOKEN)])
    deliveries.accept(engine, event)


def test_untagged_calls_are_listed_newest_first_and_by_agent(site: Site) -> None:
    _ended(site.engine, 1, "maya@example.com", tags=[])
    _ended(site.engine, 2, "leo@example.com", tags=[])
    _ended(site.engine, 3, "maya@example.com", tags=[{"id": 1, "name": "Interested"}])
    _ended(site.engine, 4, "maya@example.com", tags=[], answered=False)  # missed: nobody to tag
    _ended(site.engine, 5, "maya@example.com", tags=[])

    calls, total = untagged.untagged_calls(site.engine)
    assert ([c.id for c in calls], total) == ([5, 2, 1], 3)
    calls, total = untagged.untagged_for_agent(site.engine, "Maya@example.com", 1)
    assert ([c.id for c in calls], total) == ([5], 2)

    manager = site.user(MANAGER, "manager")
    page = manager.client.get("/untagged").text
    assert page.index('id="untagged-5"') < page.index('id="untagged-2"')
    only = manager.client.get(
        "/untagged",
        params={"agent": "leo@example.com"},
        headers={"HX-Request": "true", "HX-Target": "untagged-results"},
    ).text
    assert only.startswith('<section id="untagged-results"')
    assert re.findall(r'id="untagged-(\d+)"', only) == ["2"]

    _ended(site.engine, 5, "maya@example.com", tags=[{"id": 2, "name": "Busy"}])  # tagged later
    assert [c.id for c in untagged.untagged_calls(site.engine)[0]] == [2, 1]


def test_the_backfill_button_queues_one_durable_job_for_the_offered_window(site: Site) -> None:
    since, until = 1_764_000_000, 1_764_003_600
    with Session(site.engine) as s:
        s.add(
            OrgFact(
                key=backfill.SUGGESTED,
                value=f'{{"since": {since}, "until": {until}, "calls": 12}}',
                fetched_at=time.time(),
            )
        )
        s.commit()
    manager = site.user(MANAGER, "manager")
    page = manager.client.get("/settings/agents").text
    assert "Aircall holds 12" in page
    for _ in range(2):  # a double click makes one job
        answer = manager.client.post(
            "/settings/backfill",
            data=_form(manager, since=str(since), until=str(until), next="/review"),
        )
        assert (answer.status_code, answer.headers["location"]) == (303, "/review")
    with Session(site.engine) as s:
        (job,) = s.exec(select(Job).where(Job.kind == kinds.BACKFILL)).all()
    assert job.payload == {"since": since, "until": until, "by": MANAGER}
    assert job.status == "queued"
    assert 'id="backfill-status"' in manager.client.get("/settings/agents").text
    later = manager.client.post(
        "/settings/backfill", data=_form(manager, since=str(until), until=str(since))
    )
    assert later.status_code == 400


def test_the_backfill_job_logs_the_calls_aircall_holds_and_we_missed(
    settings: object, engine: Engine, company: object, aircall: object
) -> None:
    agent = company.add_user("Jane", AGENT_EMAIL)  # type: ignore[attr-defined]
    number = company.add_number("Support line", "+1 212 555 0199")  # type: ignore[attr-defined]
    start = int(time.time()) - 3600
    missed = []
    for i in range(3):
        call = company.start_call(  # type: ignore[attr-defined]
            direction="inbound",
            external=CALLER,
            number_id=number["id"],
            user_id=agent["id"],
            at=start + i * 60,
        )
        company.answer(call["id"], user_id=agent["id"], at=start + i * 60 + 5)  # type: ignore[attr-defined]
        company.hangup(call["id"], at=start + i * 60 + 20)  # type: ignore[attr-defined]
        company.end(call["id"])  # type: ignore[attr-defined]
        missed.append(call["id"])
    window = (datetime.fromtimestamp(start - 60, UTC), datetime.fromtimestamp(start + 600, UTC))
    backfill_job.enqueue(engine, *window, by=MANAGER)
    job = queue.claim(engine, "test", lease_seconds=30)
    assert job is not None
    assert job.kind == kinds.BACKFILL
    ctx = make_context(settings, engine)  # type: ignore[arg-type]
    result = asyncio.run(HANDLERS[kinds.BACKFILL](ctx, job))
    assert result["queued"] == 3
    with Session(engine) as s:
        logged = s.exec(select(Job.call_id).where(Job.kind == kinds.LOG_CALL)).all()
    assert sorted(logged) == sorted(missed)
