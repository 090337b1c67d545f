"""E04 → A06: when a call is answered, show the caller's Salesforce record in the Aircall phone."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from integrations.errors import RemoteError, RemoteRejected
from integrations.phones import display
from integrations.salesforce.links import record_link
from integrations.store.models import Call, Job
from integrations.sync.callers.matching import Match, Policy, decide
from integrations.sync.calls.context_card import caller_context, card_lines
from integrations.sync.jobs.context import Context


def card_contents(
    e164: str | None,
    matches: list[dict[str, Any]],
    policy: Policy,
    instance_url: str,
    context: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The card: the chosen record with a link and its context (the dashboard's lines), or a
    plain "unknown caller"."""
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
            "link": record_link(instance_url, chosen.sobject, chosen.id),
        },
        {"type": "shortText", "label": "Record", "text": chosen.label},
        {"type": "shortText", "label": "Number", "text": number},
    ]
    if context and context.get("id") == chosen.id:
        contents += [
            {"type": "shortText", "label": label, "text": text}
            for label, text in card_lines(context)
        ]
    if len(matches) > 1:
        contents.append(
            {"type": "shortText", "label": "Also matching", "text": f"{len(matches) - 1} more"}
        )
    return contents


async def caller_context_for_card(
    ctx: Context, job: Job, e164: str, chosen: Match
) -> dict[str, Any] | None:
    """The record's context (cached per number); a refusal leaves it off the card."""
    try:
        return await ctx.sf(
            lambda: caller_context(
                ctx.engine,
                ctx.salesforce,
                e164,
                chosen,
                max_age=ctx.settings.caller_cache_seconds,
            )
        )
    except RemoteRejected as exc:
        await ctx.record(job, "salesforce", "read caller context", chosen.id, exc.body, ok=False)
        return None


def _load(ctx: Context, call_id: int) -> tuple[str, str | None]:
    with Session(ctx.engine) as s:
        call = s.get(Call, call_id)
        if call is None:
            raise LookupError(f"call {call_id} not stored")
        return call.status, call.e164


async def _ended(ctx: Context, call_id: int) -> bool:
    """Whether the call is over: by our store, else by Aircall itself (its end's webhook may
    still be on its way; Aircall's words for refusing a card on an ended call are not known)."""
    if (await ctx.db(_load, ctx, call_id))[0] == "done":
        return True
    try:
        call = await ctx.aircall.get_call(call_id)
    except RemoteError:
        return False
    return call.get("status") == "done"


async def insight_card(ctx: Context, job: Job) -> dict[str, Any]:
    assert job.call_id is not None  # noqa: S101  (insight_card jobs always carry one)
    status, e164 = await ctx.db(_load, ctx, job.call_id)
    if status == "done":
        return {"skipped": "call already ended"}  # Aircall shows cards on live calls only
    matches = await ctx.caller_matches(e164) if e164 else []
    policy = Policy.from_settings(ctx.settings)
    context = None
    chosen = decide(matches, policy).match
    if e164 and chosen is not None:
        context = await caller_context_for_card(ctx, job, e164, chosen)
    contents = card_contents(e164, matches, policy, ctx.salesforce.instance_url, context)
    try:
        await ctx.aircall.insight_card(job.call_id, contents)
    except RemoteRejected as exc:
        await ctx.record(job, "aircall", "insight card", contents, exc.body, ok=False)
        if await _ended(ctx, job.call_id):
            # The call ended while we looked the caller up: Aircall shows cards on live calls.
            return {"skipped": "call ended before the card was ready"}
        raise
    except Exception as exc:
        await ctx.record(
            job, "aircall", "insight card", contents, getattr(exc, "body", str(exc)), ok=False
        )
        raise
    await ctx.record(job, "aircall", "insight card", contents, "accepted")
    return {"action": "A06", "cards": len(contents)}
