"""The org's duplicate rules on Lead and Contact, and agents with no Salesforce User."""

from __future__ import annotations

import asyncio

from integrations.health.lines import Line
from integrations.sync.callers.matching import unmapped_agents
from integrations.sync.jobs.context import Context

RULES_QUERY = (
    "SELECT Id, DeveloperName, SobjectType, IsActive FROM DuplicateRule "
    "WHERE IsActive = true AND SobjectType IN ('Lead', 'Contact') ORDER BY DeveloperName"
)


async def duplicate_rules(ctx: Context) -> list[Line]:
    """Active rules are not a problem: what they mean for Callbridge is said in the line."""
    rows = await asyncio.to_thread(ctx.salesforce.query, RULES_QUERY)
    if not rows:
        return [Line("Duplicate rules: none active on Lead and Contact")]
    names = ", ".join(f"{r['DeveloperName']} ({r['SobjectType']})" for r in rows)
    allow = ctx.settings.salesforce_duplicate_allow_save
    meaning = (
        "Leads and Contacts Callbridge creates are saved past rules that only alert "
        "(SALESFORCE_DUPLICATE_ALLOW_SAVE)"
        if allow
        else "a Lead or Contact Callbridge creates that a rule refuses is not made"
    )
    return [
        Line(
            f"Duplicate rules active: {names}. {meaning}; where a rule blocks, the call is "
            "logged on the record the rule matched"
        )
    ]


async def agents(ctx: Context) -> list[Line]:
    missing = await asyncio.to_thread(unmapped_agents, ctx.engine)
    if not missing:
        return [Line("Agents: each has a Salesforce User")]
    emails = ", ".join(a.email for a in missing[:10]) + (" …" if len(missing) > 10 else "")
    return [
        Line(
            f"Agents without a Salesforce User ({len(missing)})",
            f"{emails}: their calls' Tasks are owned by the integration user. Map each on "
            "Automations → Agents & backfill, or give them an active Salesforce User with "
            "the same email (Setup → Users)",
        )
    ]
