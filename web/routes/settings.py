"""Manager pages beside the builder: agents and their Salesforce User, untagged calls, and the
backfill button. ``notices`` gives other manager pages the same warnings in one line."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from integrations.errors import BadInput, CallbridgeError
from integrations.store import accounts
from integrations.store.accounts import MANAGER
from integrations.sync.callers import matching, owners
from integrations.sync.calls import untagged
from integrations.sync.recovery import backfill, backfill_job
from web import params, security
from web.org_fields import NOT_CONFIGURED, UNREACHABLE, salesforce
from web.templating import render


def _notices(engine: Any) -> dict[str, Any]:
    return {
        "unmapped_count": len(matching.unmapped_agents(engine)),
        "backfill_window": backfill.suggested_window(engine),
        "backfill_job": backfill_job.latest(engine),
    }


async def notices(request: Request) -> dict[str, Any]:
    """Context for ``partials/manager_notices.html``: unmapped agents, a backfill to offer."""
    return await run_in_threadpool(_notices, request.app.state.engine)


# -- agents ---------------------------------------------------------------------------------------


async def _agents_context(request: Request) -> dict[str, Any]:
    engine = request.app.state.engine
    rows = await run_in_threadpool(owners.agents, engine)
    users, problem = None, None
    sf = salesforce(request)
    if sf is None:
        problem = NOT_CONFIGURED.replace("field names", "Users")
    else:
        try:
            users = await run_in_threadpool(owners.active_users, sf)
        except CallbridgeError as exc:
            problem = f"{UNREACHABLE.replace('field names', 'Users')} ({str(exc)[:300]})"
    context = {
        "agents": rows,
        "users": users or [],
        "user_names": {u.id[:15]: u for u in users or []},
        "users_problem": problem,
        "tab": "agents",
    }
    context.update(await notices(request))
    return context


@security.guard(MANAGER)
async def agents_page(request: Request) -> Response:
    context = await _agents_context(request)
    context["saved"] = request.query_params.get("saved")
    context["signed_out"] = request.query_params.get("signed_out")
    context["sessions"] = request.query_params.get("sessions")
    return render(request, "pages/settings_agents.html", context)


@security.guard(MANAGER)
async def map_agent(request: Request) -> Response:
    """Tie an agent to a Salesforce User (checked against the org's active Users), or clear it."""
    data = await request.form()
    email = str(data.get("email") or "")
    user_id = None if data.get("op") == "clear" else str(data.get("user_id") or "")
    if user_id == "":
        user_id = None
    sf = salesforce(request)
    try:
        users = await run_in_threadpool(owners.active_users, sf) if sf and user_id else None
    except CallbridgeError:
        users = None  # Salesforce unreachable: the id's shape is still checked
    try:
        await run_in_threadpool(owners.map_agent, request.app.state.engine, email, user_id, users)
    except BadInput as exc:
        context = await _agents_context(request)
        context["error"] = (email.strip().lower(), str(exc))
        status = 200 if request.headers.get("HX-Request") else 400
        return render(request, "pages/settings_agents.html", context, status)
    return RedirectResponse(f"/settings/agents?saved={email.strip().lower()}", status_code=303)


@security.guard(MANAGER)
async def sign_out_everywhere(request: Request) -> Response:
    """End every session of one user (a lost laptop, a leaver): their next request signs in."""
    email = str((await request.form()).get("email") or "")
    try:
        ended = await run_in_threadpool(accounts.end_sessions, request.app.state.engine, email)
    except BadInput as exc:
        raise HTTPException(400, str(exc)) from None
    query = urlencode({"signed_out": accounts.normalise_email(email), "sessions": ended})
    return RedirectResponse(f"/settings/agents?{query}", status_code=303)


# -- untagged calls -----------------------------------------------------------------------------


@security.guard(MANAGER)
async def untagged_page(request: Request) -> Response:
    engine = request.app.state.engine
    agent = request.query_params.get("agent") or None
    calls, total = await run_in_threadpool(lambda: untagged.untagged_calls(engine, agent=agent))
    context = {"calls": calls, "total": total, "agent": agent, "tab": "untagged"}
    if request.headers.get("HX-Target") == "untagged-results":
        return render(request, "partials/automation_untagged_rows.html", context)
    context["agents"] = await run_in_threadpool(untagged.untagged_agents, engine)
    return render(request, "pages/untagged.html", context)


# -- backfill -------------------------------------------------------------------------------------


_LAST_SECOND = 253402300799  # 9999-12-31 23:59:59 UTC, the last datetime Python has


def _moment(value: object, zone: str) -> datetime:
    """UNIX seconds (the offered window), or a local ``datetime-local`` value of the form."""
    text = str(value or "").strip()
    if text.isdigit():  # "²" and "٣" are digits to Python: bounded ASCII ones only
        seconds = params.bounded_int(text, high=_LAST_SECOND)
        if seconds is None:
            raise BadInput(f"{text[:40]!r} is not a time in UNIX seconds")
        return datetime.fromtimestamp(seconds, UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{text[:40]!r} is not a date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))


@security.guard(MANAGER)
async def start_backfill(request: Request) -> Response:
    """Queue a backfill of the offered window (or one the manager typed) as a durable job."""
    data = await request.form()
    zone = request.app.state.settings.display_time_zone
    try:
        since, until = _moment(data.get("since"), zone), _moment(data.get("until"), zone)
        await run_in_threadpool(
            lambda: backfill_job.enqueue(
                request.app.state.engine, since, until, by=request.state.user.email
            )
        )
    except BadInput as exc:
        raise HTTPException(400, str(exc)) from None
    back = security.safe_next(str(data.get("next") or "/settings/agents"))
    return RedirectResponse(back, status_code=303)
