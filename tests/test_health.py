"""Health and ``callbridge doctor``: every check on one line, the problem named with its fix."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from sqlalchemy import Engine

from integrations.health import report
from integrations.health.lines import Line
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Org
from integrations.salesforce.emulator.duplicates import STANDARD
from integrations.settings import Settings
from integrations.sync.automations import dispositions
from integrations.sync.callers.matching import Policy, caller_decision, set_agent_user
from integrations.sync.jobs.worker import make_context
from tests.conftest import WEBHOOK_TOKEN, SettingsWith
from tests.helpers import worker_env


def doctor(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", "--log-level", "ERROR", "doctor"],
        env=worker_env(settings, WEBHOOK_TOKEN),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def checked(settings: Settings, engine: Engine) -> list[Line]:
    """The checks run in this process, as the Health page runs them."""

    async def run() -> list[Line]:
        ctx = make_context(settings, engine)
        try:
            return await report.run(ctx)
        finally:
            await ctx.aircall.aclose()
            ctx.salesforce.close()

    return asyncio.run(run())


def problem(lines: list[Line], name: str) -> str:
    found = [line.problem for line in lines if line.name == name]
    assert found, [line.text() for line in lines]
    assert found[0] is not None, f"{name} is ok"
    return found[0]


def _quiet_dispositions(engine: Engine) -> None:
    """A fresh org lacks the default rules' target values: switch the rules off."""
    for rule in dispositions.rules(engine):
        dispositions.set_rule(engine, rule.key, by="test", enabled=False)


def test_doctor_names_a_hidden_field_with_where_to_fix_it_and_exits_1(
    settings: Settings, engine: Engine, org: Org
) -> None:
    _quiet_dispositions(engine)
    org.hide_field("Contact", "AssistantPhone")
    result = doctor(settings)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert "ok  Salesforce connection" in out
    assert "ok  Aircall connection" in out
    (line,) = [o for o in out if o.startswith("PROBLEM  Contact.AssistantPhone: ")]
    assert "the integration user cannot see this field" in line
    assert "matching callers" in line
    assert "polling" in line
    assert (
        "Setup → Object Manager → Contact → Fields & Relationships → AssistantPhone → "
        "Set Field-Level Security" in line
    )
    assert sum(o.startswith("PROBLEM") for o in out) == 1, out
    assert report.problems_found(engine) == 1  # what the top bar reads


def test_doctor_exits_0_when_every_check_is_ok(
    settings: Settings, engine: Engine, org: Org
) -> None:
    _quiet_dispositions(engine)
    org.duplicate_rules[:] = STANDARD
    result = doctor(settings)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert all(o.startswith("ok  ") for o in out), out
    assert any("Standard_Lead_Duplicate_Rule (Lead)" in o for o in out)
    assert "ok  Org time zone: America/Los_Angeles (the org's setting)" in out
    assert report.problems_found(engine) == 0


def test_doctor_reports_a_disposition_value_missing_from_the_org_picklist(
    settings: Settings, engine: Engine
) -> None:
    _quiet_dispositions(engine)
    dispositions.set_rule(engine, "interested", by="test", enabled=True, lead_status="Hot Lead")
    result = doctor(settings)
    assert result.returncode == 1
    (line,) = [o for o in result.stdout.splitlines() if "Hot Lead" in o]
    assert line.startswith("PROBLEM  Disposition rule value: Interested: Lead ")
    assert "has no value 'Hot Lead'" in line
    assert "Dispositions page" in line


def test_read_only_fields_usage_and_unmapped_agents_are_problems(
    settings_with: SettingsWith, engine: Engine, org: Org
) -> None:
    _quiet_dispositions(engine)
    org.make_read_only("Task", "Subject")
    org.api_used = 14_000  # of 15,000
    set_agent_user(engine, "jane.agent@example.com", None)
    lines = checked(settings_with(salesforce_api_threshold=0.9), engine)
    subject = problem(lines, "Task.Subject")
    assert "can read this field but not set it on new records" in subject
    assert "untick Read-Only" in subject
    usage = next(line for line in lines if line.name.startswith("Salesforce API usage"))
    assert usage.problem is not None
    assert "past SALESFORCE_API_THRESHOLD (90%)" in usage.problem
    agents = problem(lines, "Agents without a Salesforce User (1)")
    assert agents.startswith("jane.agent@example.com: their calls' Tasks are owned")


def test_unreachable_salesforce_is_one_problem_per_check_not_an_error(
    settings_with: SettingsWith, engine: Engine
) -> None:
    lines = checked(settings_with(salesforce_client_secret="wrong-secret"), engine)
    assert problem(lines, "Salesforce connection").startswith("Salesforce refused")
    assert problem(lines, "Field access") == report.SKIPPED
    assert problem(lines, "Duplicate rules") == report.SKIPPED
    assert next(line for line in lines if line.name == "Aircall connection").ok


def test_a_custom_phone_field_hidden_from_matching_is_left_out_and_named(
    settings_with: SettingsWith, engine: Engine, org: Org
) -> None:
    org.add_field("Contact", "Direct_Line__c", "phone")
    contact = org.insert("Contact", {"LastName": "Lee", "Phone": "+14155550100"})
    org.hide_field("Contact", "Direct_Line__c")
    settings = settings_with(salesforce_phone_fields=["Contact.Direct_Line__c"])
    sf = SalesforceClient(settings)
    try:
        policy = Policy.from_settings(settings)
        decision = caller_decision(
            engine, sf, "+14155550100", region="US", max_age=0, policy=policy
        )
    finally:
        sf.close()
    assert decision.match is not None
    assert decision.match.id == contact
    hidden = problem(checked(settings, engine), "Contact.Direct_Line__c")
    assert "matching callers" in hidden
    assert "Set Field-Level Security" in hidden
