"""Domain exceptions as HTTP answers: short, and never with a secret or a traceback."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrations.errors import BadInput, BadToken


class BodyTooLarge(Exception):
    """The request body passed our limit before we finished reading it."""


async def bad_input(_request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def bad_token(_request: Request, _exc: Exception) -> Response:
    return JSONResponse({"error": "unknown webhook token"}, status_code=401)


async def too_large(_request: Request, _exc: Exception) -> Response:
    return JSONResponse({"error": "body larger than 1 MiB"}, status_code=413)


async def server_error(_request: Request, _exc: Exception) -> Response:
    return JSONResponse({"error": "internal error"}, status_code=500)


HANDLERS = {
    BadInput: bad_input,
    BadToken: bad_token,
    BodyTooLarge: too_large,
    500: server_error,
}
