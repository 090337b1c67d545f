"""``/``: the live calls of the signed-in agent (a manager sees the whole team), and what the
agent does from there: set a disposition and a note, create a Lead, pick among matches.

Each action is checked here: an agent acts on their own calls only, a manager on all.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from integrations.store.models import Call
from integrations.sync.callers.matching import Policy
from integrations.sync.calls import agent_actions, context_card
from integrations.sync.calls import untagged as untagged_calls
from integrations.sync.review import browse
from web import params, security
from web.routes.live import SNAPSHOT_SIZE, on_the_line
from web.templating import render


@security.guard()
async def dashboard(request: Request) -> Response:
    user = request.state.user
    calls = await run_in_threadpool(
        browse.recent_calls,
        request.app.state.engine,
        request.app.state.settings.record_base_url,
        agent=None if user.is_manager else user.email,
        limit=SNAPSHOT_SIZE,
    )
    own = on_the_line([call for call in calls if call.active and call.agent_email == user.email])
    untagged, untagged_total = await run_in_threadpool(
        untagged_calls.untagged_for_agent, request.app.state.engine, user.email
    )
    return request.app.state.templates.TemplateResponse(
        request,
        "pages/dashboard.html",
        {
            "calls": calls,
            "active": own[0] if own else None,
            "untagged": untagged,
            "untagged_total": untagged_total,
        },
    )


async def _own_call(request: Request) -> Call:
    """The call of the path, if this user may act on it: managers all, agents their own."""
    call = await run_in_threadpool(
        browse.find_call, request.app.state.engine, params.path_id(request, "call_id")
    )
    if call is None:
        raise HTTPException(404, "No such call.")
    user = request.state.user
    if not user.is_manager and call.agent_email != user.email:
        raise HTTPException(403, "This call is another agent's.")
    return call


async def _caller(
    request: Request,
    call: Call,
    status: int = 200,
    lead: agent_actions.LeadForm | None = None,
) -> Response:
    settings, engine = request.app.state.settings, request.app.state.engine
    panel = await run_in_threadpool(
        context_card.panel, engine, call.id, Policy.from_settings(settings)
    )
    if lead is None:
        lead = await run_in_threadpool(agent_actions.lead_defaults, engine, call.id)
    unowned = bool(call.e164) and await run_in_threadpool(
        agent_actions.lead_owner_missing, engine, call.e164
    )
    return render(
        request,
        "partials/caller_panel.html",
        {
            "panel": panel,
            "record_base": settings.record_base_url,
            "lead": lead,
            "lead_unowned": unowned,
        },
        status,
    )


async def _actions(
    request: Request, call: Call, sent: str = "", note_sent: bool = False, status: int = 200
) -> Response:
    tags = await agent_actions.company_tags(request.app.state.settings, request.app.state.engine)
    return render(
        request,
        "partials/call_actions.html",
        {"call_id": call.id, "tags": tags, "sent": sent, "note_sent": note_sent},
        status,
    )


def _done(request: Request, call: Call) -> Response | None:
    """Without htmx, a plain form goes back to the page it came from."""
    if request.headers.get("HX-Request"):
        return None
    return RedirectResponse(f"/calls/{call.id}", status_code=303)


@security.guard()
async def caller_panel(request: Request) -> Response:
    """The caller's Salesforce record, its context, and Create Lead or the pick."""
    return await _caller(request, await _own_call(request))


@security.guard()
async def call_actions(request: Request) -> Response:
    """The disposition and note form."""
    return await _actions(request, await _own_call(request))


@security.guard()
async def set_disposition(request: Request) -> Response:
    call = await _own_call(request)
    form = await request.form()
    tag, note = str(form.get("tag") or ""), str(form.get("note") or "")
    if not tag.strip() and not note.strip():
        raise HTTPException(400, "Choose a disposition or write a note.")
    await run_in_threadpool(
        agent_actions.request_disposition, request.app.state.engine, call.id, tag, note
    )
    await request.app.state.live.publish(call.id)
    return _done(request, call) or await _actions(
        request, call, sent="Sent to Aircall.", note_sent=bool(note.strip())
    )


@security.guard()
async def create_lead(request: Request) -> Response:
    call = await _own_call(request)
    engine = request.app.state.engine
    if not call.e164:
        raise HTTPException(400, "The number is hidden: there is nothing to create a Lead for.")
    if await run_in_threadpool(agent_actions.has_match, engine, call.e164):
        raise HTTPException(409, "This number already has a Salesforce record.")
    lead = agent_actions.read_lead_form(await request.form())
    if lead.errors:  # the form again, with what to fix next to each field
        return await _caller(request, call, 200 if request.headers.get("HX-Request") else 400, lead)
    await run_in_threadpool(agent_actions.request_lead, engine, call.id, call.e164, lead)
    await request.app.state.live.publish(call.id)
    return _done(request, call) or await _caller(request, call)


@security.guard()
async def pick_record(request: Request) -> Response:
    """The agent's choice among the number's matches; only a record shown may be picked."""
    call = await _own_call(request)
    engine = request.app.state.engine
    sobject, _, record_id = str((await request.form()).get("record") or "").partition(":")
    match = None
    if call.e164:
        match = await run_in_threadpool(
            context_card.find_candidate, engine, call.e164, sobject, record_id
        )
    if match is None or call.e164 is None:
        raise HTTPException(400, "That record is not one of this number's matches.")
    await run_in_threadpool(agent_actions.pick, engine, call.id, call.e164, match)
    await request.app.state.live.publish(call.id)
    return _done(request, call) or await _caller(request, call)
