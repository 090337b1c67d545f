"""Connecting Aircall from the browser: the API key, checked before it is stored, and the
webhook Callbridge registers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route


async def context(request: Request) -> dict[str, Any]:
    """What ``partials/connection_aircall.html`` shows."""
    return {}


ROUTES: list[Route] = []
