"""E04 → A06: when a call is answered, show the caller's Salesforce record in the Aircall phone."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from integrations.errors import RemoteRejected
from integrations.phones import display
from integrations.store.models import Call, Job
from integrations.sync.context import Context
from integrations.sync.matching import Policy, caller_matches, decide


def card_contents(
    e164: str | None, matches: list[dict[str, Any]], policy: Policy, record_url: str
) -> list[dict[str, Any]]:
    """The card: the chosen record with a link, or a plain "unknown caller"."""
    number = display(e164) if e164 else "Hidden number"
    chosen = decide(matches, policy).match
    if chosen is None:
        return [
            {"type": "title", "text": "Salesforce: no record for this number"},
            {"type": "shortText", "label": "Number", "text": number},
        ]
    contents: list[dict[str, Any]] = [
        {
            "type": "title",
            "text": f"Salesforce: {chosen.name or chosen.id}",
            "link": f"{record_url}/{chosen.id}",
        },
        {"type": "shortText", "label": "Record", "text": chosen.sobject},
        {"type": "shortText", "label": "Number", "text": number},
    ]
    if len(matches) > 1:
        contents.append(
            {"type": "shortText", "label": "Also matching", "text": f"{len(matches) - 1} more"}
        )
    return contents


def _load(ctx: Context, call_id: int) -> tuple[str, str | None]:
    with Session(ctx.engine) as s:
        call = s.get(Call, call_id)
        if call is None:
            raise LookupError(f"call {call_id} not stored")
        return call.status, call.e164


async def insight_card(ctx: Context, job: Job) -> dict[str, Any]:
    assert job.call_id is not None  # noqa: S101  (insight_card jobs always carry one)
    status, e164 = await ctx.db(_load, ctx, job.call_id)
    if status == "done":
        return {"skipped": "call already ended"}  # Aircall shows cards on live calls only
    matches: list[dict[str, Any]] = []
    policy = Policy.from_settings(ctx.settings)
    if e164:
        settings = ctx.settings
        matches = await ctx.sf(
            lambda: caller_matches(
                ctx.engine,
                ctx.salesforce,
                e164,
                region=settings.default_region,
                max_age=settings.caller_cache_seconds,
                policy=policy,
            )
        )
    contents = card_contents(e164, matches, policy, ctx.salesforce.record_url("").rstrip("/"))
    try:
        await ctx.aircall.insight_card(job.call_id, contents)
    except RemoteRejected as exc:
        if (await ctx.db(_load, ctx, job.call_id))[0] == "done":
            # The call ended while we looked the caller up: Aircall shows cards on live calls.
            await ctx.record(job, "aircall", "insight card", contents, exc.body, ok=False)
            return {"skipped": "call ended before the card was ready"}
        await ctx.record(job, "aircall", "insight card", contents, exc.body, ok=False)
        raise
    except Exception as exc:
        await ctx.record(
            job, "aircall", "insight card", contents, getattr(exc, "body", str(exc)), ok=False
        )
        raise
    await ctx.record(job, "aircall", "insight card", contents, "accepted")
    return {"action": "A06", "cards": len(contents)}
