"""The gateway in front of the emulated ``/v1``, as at Aircall.

Authentication (401/403 with ``{"message"}``), the per-company rate limit (429) and injected
faults are answered here, before any handler; every authenticated answer carries the three
``X-AircallApi-*`` headers. Unknown routes get the gateway's 404, not the application's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import logging
import secrets

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .company import Company
from .errors import AircallError
from .faults import Fault

_dropping: contextvars.ContextVar[bool] = contextvars.ContextVar("dropping", default=False)


class QuietDrops(logging.Filter):
    """Hide uvicorn's complaint about the response we cut on purpose (a ``drop`` fault)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _dropping.get()


class Edge:
    """Authentication, rate limit and fault injection in front of ``/v1``."""

    def __init__(self, app: ASGIApp, company: Company) -> None:
        self.app = app
        self.company = company

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/__emulator/"):
            await self.app(scope, receive, send)
            return
        if not path.startswith("/v1/"):
            await _message(404, "Not Found")(scope, receive, send)
            return
        authorization = Headers(scope=scope).get("authorization")
        if authorization is None:
            await _message(401, "Unauthorized")(scope, receive, send)
            return
        if not self._authorized(authorization):
            await _message(403, "Forbidden")(scope, receive, send)
            return
        admitted, rate_headers = self.company.admit_request()
        if not admitted:
            body = {
                "error": "Too Many Requests",
                "troubleshoot": "Rate limit reached, retry after the reset time",
            }
            await JSONResponse(body, 429, headers=rate_headers)(scope, receive, send)
            return
        fault = self.company.faults.take(scope["method"], path)
        if fault is not None and fault.kind == "drop":
            _dropping.set(True)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            return  # uvicorn closes the connection on a response left unfinished
        if fault is not None and fault.kind == "status":
            await _fault_response(fault, rate_headers)(scope, receive, send)
            return
        if fault is not None:
            await asyncio.sleep(fault.delay)

        async def send_with_rate_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in rate_headers.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_rate_headers)

    def _authorized(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = f"{self.company.api_id}:{self.company.api_token}"
        return secrets.compare_digest(decoded.encode(), expected.encode())


def _message(status: int, text: str) -> Response:
    return JSONResponse({"message": text}, status)


def _fault_response(fault: Fault, rate_headers: dict[str, str]) -> Response:
    headers = dict(rate_headers)
    if fault.status == 429:
        headers["X-AircallApi-Remaining"] = "0"
        if fault.reset is not None:
            headers["X-AircallApi-Reset"] = str(fault.reset)
    if isinstance(fault.body, str):
        return Response(fault.body, fault.status, headers=headers)
    body = fault.body
    if body is None:
        body = {"error": _REASONS.get(fault.status, "Error"), "troubleshoot": "Injected fault"}
    return JSONResponse(body, fault.status, headers=headers)


_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


async def aircall_error(request: Request, exc: AircallError) -> Response:
    return JSONResponse(exc.body(), exc.status)


async def edge_not_found(request: Request, exc: Exception) -> Response:
    """Unknown routes and methods: the gateway's 404, not the application's."""
    return _message(404, "Not Found")
