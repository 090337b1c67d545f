"""``GET /metrics`` in the Prometheus text format, behind ``METRICS_TOKEN``."""

from __future__ import annotations

from starlette.routing import Route

ROUTES: list[Route] = []
