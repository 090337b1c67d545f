"""The HTTP face of the emulator: OAuth endpoints (token, authorize, revoke, identity), data API,
control API, fault injection."""

from __future__ import annotations

import asyncio
import json
from html import escape
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import api, auth
from .errors import ApiError, bad_request, not_found
from .faults import Fault
from .org import Org
from .wire import MISSING, ApiRequest, version_of

JSON_TYPE = "application/json;charset=UTF-8"
SESSION_INVALID = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
LIMIT_EXCEEDED = [
    {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
]
DATA_PREFIX = "/services/data/"
CONTROL_PREFIX = "/__emulator"


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    if status in (204, 304):
        return Response(status_code=status, headers=headers)
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(content, status_code=status, headers=headers, media_type=JSON_TYPE)


def _limit_header(org: Org) -> dict[str, str]:
    return {"Sforce-Limit-Info": f"api-usage={org.api_used}/{org.api_max}"}


def _data_version(path: str) -> str | None:
    """The API version of a data path, or None for anything else (versions root included)."""
    if not path.startswith(DATA_PREFIX):
        return None
    return version_of(path[len(DATA_PREFIX) :].split("/", 1)[0])


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


# -- routes ----------------------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded body (the first value of each key); anything else reads as empty."""
    body = await request.body()
    form: dict[str, str] = {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            form.setdefault(key, value)
    return form


def _host(request: Request) -> str:
    return request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"


async def token(request: Request) -> Response:
    org: Org = request.app.state.org
    form = await _form(request)
    host = _host(request)
    headers = {"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"}
    try:
        answer = auth.issue(org, form, request.headers.get("authorization"), host)
    except auth.OAuthError as exc:
        return _json(400, exc.body, headers)
    return _json(200, answer, headers)


SIGN_IN_PAGE = """<!doctype html><meta charset=utf-8><title>Login | Salesforce</title>
<link rel=icon href="data:,"><h1>Salesforce emulator</h1>
<p>Log in to allow access to your org.</p>{error}
<form method="post" action="/services/oauth2/authorize">{hidden}
<label>Username <input name="username" autocomplete="username" value="{username}"></label>
<label>Password <input name="pw" type="password" autocomplete="current-password"></label>
<button name="action" value="login">Log In</button>
<button name="action" value="deny">Deny</button></form>"""
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def _sign_in_page(params: dict[str, str], error: str = "", username: str = "") -> Response:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{escape(params[name])}">'
        for name in AUTHORIZE_PARAMS
        if name in params
    )
    shown = f'<p role="alert">{escape(error)}</p>' if error else ""
    page = SIGN_IN_PAGE.format(error=shown, hidden=hidden, username=escape(username))
    return HTMLResponse(page, status_code=200 if not error else 401)


async def authorize(request: Request) -> Response:
    """The web-server flow: check the request, show the sign-in page, then send the browser
    back to redirect_uri with a code (or an error) and the state."""
    org: Org = request.app.state.org
    if request.method == "GET":
        params = dict(request.query_params)
    else:
        params = await _form(request)
    try:
        checked = auth.check_authorize(org, params)
    except auth.AuthorizePageError as exc:
        return PlainTextResponse(exc.query, status_code=400)
    except auth.AuthorizeRedirectError as exc:
        return RedirectResponse(exc.location, status_code=302)
    if request.method == "GET":
        return _sign_in_page(params)
    if params.get("action") == "deny":
        location = checked.redirect(
            error="access_denied", error_description="end-user denied authorization"
        )
        return RedirectResponse(location, status_code=302)
    username = params.get("username", "")
    location = auth.sign_in(org, checked, username, params.get("pw", ""))
    if location is None:
        return _sign_in_page(
            params,
            "Please check your username and password. If you still can't log in, "
            "contact your Salesforce administrator.",
            username,
        )
    return RedirectResponse(location, status_code=302)


async def revoke(request: Request) -> Response:
    """``token=`` a refresh token (its access tokens go with it) or an access token."""
    org: Org = request.app.state.org
    value = (await _form(request)).get("token", "")
    if not value or not org.web_flow.revoke(value):
        return _json(
            400,
            {
                "error": "unsupported_token_type",
                "error_description": "this token type is not supported",
            },
        )
    return Response(status_code=200)


async def identity_url(request: Request) -> Response:
    org: Org = request.app.state.org
    document = auth.identity(
        org,
        request.path_params["org_id"],
        request.path_params["user_id"],
        _bearer(request),
        f"https://{_host(request)}",
    )
    if document is None:
        return PlainTextResponse("Bad_OAuth_Token", status_code=403)
    return _json(200, document)  # urls keep Salesforce's literal "{version}" placeholder


async def versions(request: Request) -> Response:
    return _json(200, api.versions())


async def data(request: Request) -> Response:
    """Every ``/services/data/vXX.X/...`` call: auth, allocation, then the REST resource."""
    org: Org = request.app.state.org
    access = _bearer(request)
    if access is None or not org.check_token(access):
        return _json(401, SESSION_INVALID, {"WWW-Authenticate": "Token"})
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    segments = raw_path.decode("latin-1").split("?")[0].split("/")[3:]
    version = version_of(segments[0]) if segments else None
    if version is None:
        return _json(404, not_found().body(), _limit_header(org))
    if not org.count_call():
        return _json(403, LIMIT_EXCEEDED, _limit_header(org))
    segments = [unquote(s) for s in segments[1:]]
    while segments and segments[-1] == "":
        segments.pop()
    org.requests[f"{request.method} {'/'.join(segments[:2])}"] += 1
    try:
        body = await _read_json(request)
    except ApiError as exc:
        return _json(exc.status, exc.body(), _limit_header(org))
    reply = api.handle(
        org,
        ApiRequest(
            method=request.method,
            segments=segments,
            version=version,
            params=request.query_params.multi_items(),
            body=body,
            headers={k.lower(): v for k, v in request.headers.items()},
        ),
    )
    return _json(reply.status, reply.body, {**reply.headers, **_limit_header(org)})


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # Python would accept NaN/Infinity; Salesforce does not


async def _read_json(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        return MISSING
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content type '{content_type or 'none'}' not supported; the emulator speaks JSON only",
        )
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        where = (
            f" at [line:{exc.lineno}, column:{exc.colno}]"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise bad_request(
            "JSON_PARSER_ERROR", f"Unexpected character in the JSON body{where}"
        ) from None


# -- control API (no auth: loopback test tooling) ------------------------------------------


async def control_records(request: Request) -> Response:
    org: Org = request.app.state.org
    sobject = request.path_params["sobject"]
    try:
        if request.method == "GET":
            return JSONResponse(org.records(sobject))
        fields = json.loads(await request.body() or b"{}")
        return JSONResponse({"id": org.insert(sobject, fields)}, status_code=201)
    except ApiError as exc:
        return JSONResponse(exc.body(), status_code=exc.status)
    except json.JSONDecodeError:
        return JSONResponse({"error": "body must be JSON"}, status_code=400)


async def control_faults(request: Request) -> Response:
    org: Org = request.app.state.org
    if request.method == "DELETE":
        org.faults.clear()
        return Response(status_code=204)
    if request.method == "GET":
        return JSONResponse([f.to_json() for f in org.faults.pending()])
    try:
        fault = Fault.from_json(json.loads(await request.body() or b"null"))
    except (ValueError, TypeError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    org.faults.add(fault)
    return JSONResponse(fault.to_json(), status_code=201)


async def control_revoke(request: Request) -> Response:
    request.app.state.org.revoke_tokens()
    return Response(status_code=204)


async def control_state(request: Request) -> Response:
    org: Org = request.app.state.org
    if request.method == "PATCH":
        try:
            changes = json.loads(await request.body() or b"{}")
            for key in changes:
                if key not in ("api_used", "api_max", "sosl_delay", "query_batch_size"):
                    raise ValueError(f"cannot set {key}")
            for key, value in changes.items():
                setattr(org, key, value)
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(
        {
            "api_used": org.api_used,
            "api_max": org.api_max,
            "org_id": org.org_id,
            "run_as_user_id": org.run_as_user_id,
            "sosl_delay": org.sosl_delay,
            "query_batch_size": org.query_batch_size,
        }
    )


# -- faults ------------------------------------------------------------------------------------


class FaultLayer:
    """ASGI layer before routing: applies a matching ``Fault`` of ``app.state.org``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        org: Org = scope["app"].state.org  # read per request: tests may swap the org
        fault = org.faults.take(scope["method"], path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "status":
            await self._answer(org, fault, path, send)
        elif fault.kind == "drop":
            await self._drop(send)
        elif fault.kind == "after_commit_delay":
            held: list[Message] = []

            async def hold(message: Message) -> None:
                held.append(message)

            await self.app(scope, receive, hold)
            await asyncio.sleep(fault.delay)
            for message in held:
                await send(message)
        else:
            if fault.kind == "delay":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "expire_session":
                org.revoke_tokens()
            await self.app(scope, receive, send)

    @staticmethod
    async def _answer(org: Org, fault: Fault, path: str, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = []
        # A refusal from the instance (4xx) costs a call; an edge failure (5xx) does not.
        if _data_version(path) and fault.status < 500 and org.count_call():
            limit = _limit_header(org)["Sforce-Limit-Info"]
            headers.append((b"sforce-limit-info", limit.encode()))
        if isinstance(fault.body, str):
            content = fault.body.encode("utf-8")
            headers.append((b"content-type", b"text/plain;charset=UTF-8"))
        elif fault.body is None:
            content = b""
        else:
            content = json.dumps(fault.body).encode("utf-8")
            headers.append((b"content-type", JSON_TYPE.encode()))
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": fault.status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    @staticmethod
    async def _drop(send: Send) -> None:
        """Start a response, send part of it, and return: the server then cuts the connection."""
        headers = [(b"content-type", JSON_TYPE.encode()), (b"content-length", b"512")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'[{"id":', "more_body": True})


async def record_page(request: Request) -> Response:
    """The record's page, where Callbridge's links lead (Lightning's path): in the demo, a
    person opens the Task or Lead Callbridge wrote. Every value is escaped."""
    org: Org = request.app.state.org
    sobject, record_id = request.path_params["sobject"], request.path_params["record_id"]
    try:
        record = org.get(sobject, record_id)
    except ApiError:
        record = None
    if record is None:
        return HTMLResponse("<h1>Record not found</h1>", status_code=404)
    rows = "".join(
        f"<tr><th>{escape(str(name))}</th><td>{escape(str(value))}</td></tr>"
        for name, value in record.items()
        if name != "attributes" and value not in (None, "")
    )
    title = escape(f"{sobject} {record.get('Name') or record.get('Subject') or record_id}")
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{title}</title>"
        f"<h1>{title}</h1><p>Salesforce emulator</p><table>{rows}</table>"
    )


def create_app(org: Org | None = None) -> Starlette:
    """The emulator as a Starlette app; ``app.state.org`` is its ``Org``."""
    org = org or Org()
    data_methods = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]
    app = Starlette(
        routes=[
            Route("/services/oauth2/token", token, methods=["POST"]),
            Route("/services/oauth2/authorize", authorize, methods=["GET", "POST"]),
            Route("/services/oauth2/revoke", revoke, methods=["POST"]),
            Route("/id/{org_id}/{user_id}", identity_url, methods=["GET"]),
            Route("/services/data", versions, methods=["GET"]),
            Route("/services/data/", versions, methods=["GET"]),
            Route("/services/data/{rest:path}", data, methods=data_methods),
            Route(
                f"{CONTROL_PREFIX}/records/{{sobject}}", control_records, methods=["GET", "POST"]
            ),
            Route(f"{CONTROL_PREFIX}/faults", control_faults, methods=["GET", "POST", "DELETE"]),
            Route(f"{CONTROL_PREFIX}/revoke", control_revoke, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/state", control_state, methods=["GET", "PATCH"]),
            Route("/lightning/r/{sobject}/{record_id}/view", record_page, methods=["GET"]),
        ],
    )
    app.router.redirect_slashes = False
    app.state.org = org
    app.add_middleware(FaultLayer)
    return app
