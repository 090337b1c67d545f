"""The Health page: every check of the installation on one line, ``ok`` or what to fix."""

from __future__ import annotations

from starlette.routing import Route

ROUTES: list[Route] = []
