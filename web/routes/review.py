"""Manager review: the calls table, a call's page and timeline, re-syncs, and the charts.

A region of a page asks for itself again by its id (htmx's ``HX-Target``): the same route then
answers with that region's partial instead of the whole page.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from integrations.errors import BadInput
from integrations.store.accounts import MANAGER
from integrations.sync.review import browse, causes, resync, stats
from web import params, security
from web.routes import settings as admin
from web.templating import render


def _filters(params: Any) -> browse.Filters:
    try:
        return browse.Filters.parse(params)
    except BadInput as exc:
        raise HTTPException(400, str(exc)) from None


def _page_number(value: str | None) -> int:
    return params.number(value, "page", low=1) if value else 1


@security.guard(MANAGER)
async def review_page(request: Request) -> Response:
    settings, engine = request.app.state.settings, request.app.state.engine
    filters = _filters(request.query_params)
    page = await run_in_threadpool(
        lambda: browse.list_calls(
            engine,
            filters,
            page=_page_number(request.query_params.get("page")),
            zone=settings.display_time_zone,
            record_base=settings.record_base_url,
        )
    )
    found = await run_in_threadpool(causes.failure_causes, engine)
    context = {
        "page": page,
        "filters": filters,
        "params": filters.as_params(),
        "causes": found,
        "cause": next((c for c in found if c.key == filters.cause), None),
    }
    if request.headers.get("HX-Target") == "review-results":
        return render(request, "partials/review_results.html", context)
    context["agents"] = await run_in_threadpool(browse.agents, engine)
    context["dispositions"] = await run_in_threadpool(browse.dispositions, engine)
    context.update(await admin.notices(request))  # unmapped agents, a backfill to offer
    return render(request, "pages/review.html", context)


@security.guard(MANAGER)
async def bulk_resync(request: Request) -> Response:
    """Re-sync every failed action of the calls the form's filters select (bulk priority)."""
    settings = request.app.state.settings
    filters = _filters(await request.form())
    batch = await run_in_threadpool(
        resync.start_bulk_resync,
        request.app.state.engine,
        filters,
        settings.display_time_zone,
        request.state.user.email,
    )
    if not request.headers.get("HX-Request"):
        return RedirectResponse(f"/review/batches/{batch.id}", status_code=303)
    progress = await run_in_threadpool(resync.batch_progress, request.app.state.engine, batch.id)
    return _progress(request, progress)


@security.guard(MANAGER)
async def batch_page(request: Request) -> Response:
    batch_id = params.path_id(request, "batch_id")
    progress = await run_in_threadpool(resync.batch_progress, request.app.state.engine, batch_id)
    if progress is None:
        raise HTTPException(404, "No such re-sync.")
    if request.headers.get("HX-Request"):
        return _progress(request, progress)
    return render(request, "pages/batch.html", {"progress": progress})


def _progress(request: Request, progress: resync.Progress | None) -> Response:
    """The progress fragment; once finished, it tells the results table to reload."""
    response = render(request, "partials/resync_progress.html", {"progress": progress})
    if progress is not None and progress.finished:
        response.headers["HX-Trigger"] = "resync-finished"
    return response


async def _visible_call(request: Request) -> browse.CallView:
    """The call of the path, if this user may see it: managers all, agents their own."""
    user = request.state.user
    call_id = params.path_id(request, "call_id")
    settings, engine = request.app.state.settings, request.app.state.engine
    calls = await run_in_threadpool(browse.call_views, engine, [call_id], settings.record_base_url)
    if not calls:
        raise HTTPException(404, "No such call.")
    if not user.is_manager and calls[0].agent_email != user.email:
        raise HTTPException(403, "This call is another agent's.")
    return calls[0]


@security.guard()
async def call_page(request: Request) -> Response:
    call = await _visible_call(request)
    target = request.headers.get("HX-Target") or ""
    if target == f"review-call-{call.id}":
        return render(request, "partials/review_row.html", {"call": call})
    if target == "call-jobs":
        return render(request, "partials/call_jobs.html", {"call": call})
    if target == "call-summary":
        return render(request, "partials/call_summary.html", {"call": call})
    entries = await run_in_threadpool(browse.timeline, request.app.state.engine, call.id)
    if target == "call-timeline":
        return render(request, "partials/call_timeline.html", {"call": call, "timeline": entries})
    return render(request, "pages/call.html", {"call": call, "timeline": entries})


@security.guard()
async def resync_call(request: Request) -> Response:
    """Run one call's actions again; its agent may do it too."""
    call = await _visible_call(request)
    engine = request.app.state.engine
    await run_in_threadpool(resync.resync_call, engine, call.id)
    await request.app.state.live.publish(call.id)
    if not request.headers.get("HX-Request"):
        return RedirectResponse(f"/calls/{call.id}", status_code=303)
    settings = request.app.state.settings
    (fresh,) = await run_in_threadpool(
        browse.call_views, engine, [call.id], settings.record_base_url
    )
    name = (
        "partials/review_row.html"
        if request.headers.get("HX-Target", "").startswith("review-call-")
        else "partials/call_jobs.html"
    )
    return render(request, name, {"call": fresh})


@security.guard(MANAGER)
async def charts_page(request: Request) -> Response:
    settings = request.app.state.settings
    try:  # the review filters' day parsing: a clear 400 for a date that is not one
        picked = browse.Filters.parse(
            {k: v for k, v in request.query_params.items() if k in ("from", "to")}
        )
    except BadInput as exc:
        raise HTTPException(400, str(exc)) from None
    figures = await run_in_threadpool(
        lambda: stats.charts(
            request.app.state.engine,
            zone=settings.display_time_zone,
            first=picked.day_from,
            last=picked.day_to,
        )
    )
    context = {"charts": figures, "data": dataclasses.asdict(figures)}
    return render(request, "pages/charts.html", context)
