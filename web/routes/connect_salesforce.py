"""Connecting Salesforce from the browser: the OAuth 2.0 web-server flow with PKCE."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route


async def context(request: Request) -> dict[str, Any]:
    """What ``partials/connection_salesforce.html`` shows."""
    return {}


ROUTES: list[Route] = []
