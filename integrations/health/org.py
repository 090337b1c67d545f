"""The org's duplicate rules on Lead and Contact, the record types Callbridge creates records
with, and agents with no Salesforce User."""

from __future__ import annotations

import asyncio

from integrations.errors import RemoteRejected
from integrations.health.lines import Line
from integrations.salesforce import access, record_types
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
        else "A Lead or Contact Callbridge creates that a rule refuses is not made"
    )
    return [
        Line(
            f"Duplicate rules active: {names}. {meaning}; where a rule blocks, the call is "
            "logged on the record the rule matched"
        )
    ]


def _record_type_lines(ctx: Context) -> list[Line]:
    lines: list[Line] = []
    chosen: list[str] = []
    plain: list[str] = []  # objects without record types of their own (Master only)
    for sobject in record_types.SETTINGS:
        name = record_types.configured(ctx.settings, sobject)
        try:
            if name:
                # Afresh: an admin who just fixed it checks again (and creates learn it too).
                rt = record_types.resolve(ctx.salesforce, sobject, max_age=0)
                why = record_types.setting_name(sobject)
            else:
                described = access.describe(ctx.salesforce, sobject)
                rt = record_types.default_type(ctx.salesforce, sobject, described)
                why = "the integration user's default"
        except record_types.RecordTypeMissing as exc:
            lines.append(Line(f"{sobject} record type", str(exc)))
            continue
        except RemoteRejected as exc:
            lines.append(Line(f"{sobject} record type", f"not checked: {str(exc)[:300]}"))
            continue
        if rt is None:
            plain.append(sobject)
        else:
            chosen.append(f"{sobject} {rt.developer_name} ({rt.name}), {why}")
    if plain:
        chosen.append(f"{_and(plain)} {'has' if len(plain) == 1 else 'have'} no record types")
    if chosen:
        lines.insert(0, Line(f"Record types of new records: {'; '.join(chosen)}"))
    return lines


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


async def record_types_in_use(ctx: Context) -> list[Line]:
    """Each configured record type exists, is active and is the integration user's to use."""
    return await asyncio.to_thread(_record_type_lines, ctx)


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
