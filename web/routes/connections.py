"""The Connections page: Salesforce and Aircall, each connected from the browser (or from the
environment, which wins). Each half is its own module: ``connect_salesforce``, ``connect_aircall``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrations.store.accounts import MANAGER
from web import security
from web.routes import connect_aircall, connect_salesforce
from web.templating import render


@security.guard(MANAGER)
async def connections_page(request: Request) -> Response:
    context = {
        "tab": "connections",
        "salesforce": await connect_salesforce.context(request),
        "aircall": await connect_aircall.context(request),
    }
    return render(request, "pages/connections.html", context)


ROUTES = [Route("/settings/connections", connections_page, methods=["GET"])]
