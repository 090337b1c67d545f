"""``/``: the live calls of the signed-in agent (a manager sees the whole team)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from integrations.sync import review
from web import security
from web.routes.live import SNAPSHOT_SIZE


@security.guard()
async def dashboard(request: Request) -> Response:
    user = request.state.user
    calls = await run_in_threadpool(
        review.recent_calls,
        request.app.state.engine,
        request.app.state.settings.record_base_url,
        agent=None if user.is_manager else user.email,
        limit=SNAPSHOT_SIZE,
    )
    own = [call for call in calls if call.active and call.agent_email == user.email]
    return request.app.state.templates.TemplateResponse(
        request, "pages/dashboard.html", {"calls": calls, "active": own[0] if own else None}
    )
