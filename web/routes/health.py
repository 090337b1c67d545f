"""The Health page: every check of the installation on one line, ``ok`` or what to fix.

The checks call Salesforce and Aircall, so they run when the page is opened (through the
worker's clients when it runs here, else clients made for the visit); the top bar reads only
the count of problems the last run kept (``health.report.problems_found``).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrations.health import report
from integrations.health.lines import Line
from integrations.store.accounts import MANAGER
from integrations.sync.jobs.worker import make_context
from web import security
from web.templating import render


async def _lines(request: Request) -> list[Line]:
    running = getattr(request.app.state, "worker", None)
    if running is not None:
        return await report.run(running.ctx)
    ctx = make_context(request.app.state.settings, request.app.state.engine)
    try:
        return await report.run(ctx)
    finally:
        await ctx.aircall.aclose()
        ctx.salesforce.close()


@security.guard(MANAGER)
async def health_page(request: Request) -> Response:
    lines = await _lines(request)
    context = {
        "tab": "health",
        "lines": lines,
        "problems": sum(not line.ok for line in lines),
        "checked_at": time.time(),
    }
    return render(request, "pages/health.html", context)


ROUTES = [Route("/settings/health", health_page, methods=["GET"])]
