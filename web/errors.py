"""Domain exceptions as HTTP answers: short, and never with a secret or a traceback."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrations.errors import BadInput, BadToken
from web.security import BodyTooLarge, headers_for


async def bad_input(_request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def bad_token(_request: Request, _exc: Exception) -> Response:
    return JSONResponse({"error": "unknown webhook token"}, status_code=401)


async def too_large(_request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=413)


async def server_error(request: Request, _exc: Exception) -> Response:
    """Run by Starlette's error middleware, outside ``SecurityHeaders``: the headers come here."""
    https = request.app.state.settings.public_url.startswith("https://")
    headers = {name.decode(): value.decode() for name, value in headers_for(request.scope, https)}
    return JSONResponse({"error": "internal error"}, status_code=500, headers=headers)


HANDLERS = {
    BadInput: bad_input,
    BadToken: bad_token,
    BodyTooLarge: too_large,
    500: server_error,
}
