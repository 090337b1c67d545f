"""Sessions, roles, CSRF and response headers for the pages (webhooks use their own token).

- Sessions live on the server (``accounts.BrowserSession``): the cookie, signed by Starlette
  (HttpOnly, SameSite=Lax, Secure over https or as ``SESSION_COOKIE_SECURE`` says), holds only
  a random session id and the CSRF token. Every request looks the id up, so signing out, a
  password change or a manager's "sign out everywhere" ends a session at once, copies of the
  cookie included.
- Every state-changing request carries the session's CSRF token: htmx sends it in the
  ``X-CSRF-Token`` header (``hx-headers`` on ``<body>``), plain forms in a hidden field.
- Roles are checked here, on the server, for each endpoint: hiding a button protects nothing.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integrations.store import accounts
from integrations.store.accounts import User

COOKIE = "callbridge_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

Endpoint = Callable[[Request], Awaitable[Response]]


class Sessions:
    """Signed-cookie sessions whose key is resolved on first use (it may live in the database)."""

    def __init__(
        self, app: ASGIApp, *, secret: Callable[[], str], max_age: int, secure: bool | None
    ) -> None:
        self.app = app
        self._secret = secret
        self._max_age = max_age
        self._secure = secure
        self._variants: dict[bool, SessionMiddleware] = {}

    def _variant(self, secure: bool) -> SessionMiddleware:
        if not self._variants:
            key = self._secret()
            for flag in (False, True):
                self._variants[flag] = SessionMiddleware(
                    self.app,
                    secret_key=key,
                    session_cookie=COOKIE,
                    max_age=self._max_age,
                    same_site="lax",
                    https_only=flag,
                )
        return self._variants[secure]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        secure = self._secure
        if secure is None:
            secure = scope.get("scheme") in ("https", "wss")
        await self._variant(secure)(scope, receive, send)


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")


def headers_for(scope: Scope, https: bool) -> list[tuple[bytes, bytes]]:
    """The security headers of a response; HSTS only over https (``https``: a PUBLIC_URL says
    so, for a TLS proxy in front), since browsers ignore it over plain http anyway."""
    if https or scope.get("scheme") == "https":
        return [*HEADERS, HSTS]
    return HEADERS


class SecurityHeaders:
    """A strict Content-Security-Policy (no inline or third-party script) on every response.

    Starlette's error middleware sits outside every middleware: ``web.errors.server_error``
    adds the same headers to 500s."""

    def __init__(self, app: ASGIApp, *, https: bool = False) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = headers_for(scope, self.https)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    """The request body passed its limit before we finished reading it."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit // 1024} KiB")


class BodyLimit:
    """Refuse a body over its path's limit (413) before anything parses it: the sign-in form is
    read before its CSRF token can be checked, so it must not take 200 MB first."""

    def __init__(self, app: ASGIApp, *, limits: dict[str, int]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.get(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await PlainTextResponse(str(BodyTooLarge(limit)), 413)(scope, receive, send)
            return
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge(limit)  # web.errors answers 413
            return message

        await self.app(scope, counted, send)


def csrf_token(conn: HTTPConnection) -> str:
    """The session's CSRF token, made on first use."""
    token = conn.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        conn.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """403 unless the request carries the session's CSRF token (header or form field)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    expected = request.session.get("csrf")
    if not (sent and expected and secrets.compare_digest(sent.encode(), expected.encode())):
        raise HTTPException(403, "The form has expired or did not come from this site. Reload.")


async def sign_in(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (a new id and CSRF token too)."""
    max_age = request.app.state.settings.session_max_age_seconds
    session_id = await run_in_threadpool(
        accounts.start_session, request.app.state.engine, user, max_age
    )
    request.session.clear()
    request.session["sid"] = session_id
    csrf_token(request)


async def sign_out(request: Request) -> None:
    """End the session on the server (a copied cookie stops working too), then the cookie."""
    session_id = request.session.get("sid")
    if isinstance(session_id, str):
        await run_in_threadpool(accounts.end_session, request.app.state.engine, session_id)
    request.session.clear()


async def current_user(conn: HTTPConnection) -> User | None:
    """The signed-in user, or None: the session was ended, expired, or its account deleted."""
    session_id = conn.session.get("sid")
    if not isinstance(session_id, str):
        return None
    max_age = conn.app.state.settings.session_max_age_seconds
    user = await run_in_threadpool(
        accounts.session_user, conn.app.state.engine, session_id, max_age
    )
    if user is None:
        conn.session.clear()
    return user


def client_ip(conn: HTTPConnection) -> str:
    """The client's address: uvicorn's ``proxy_headers`` put a trusted proxy's
    ``X-Forwarded-For`` here; the header itself is never read (anyone can send it)."""
    return conn.client.host if conn.client else "unknown"


def safe_next(target: str | None) -> str:
    """Only a path on this site may be a redirect target after signing in."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _signin_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/signin?next={quote(target, safe='')}"
    if request.headers.get("HX-Request"):
        return Response(status_code=401, headers={"HX-Redirect": location})
    if request.method in SAFE_METHODS:
        return RedirectResponse(location, status_code=303)
    raise HTTPException(401, "Sign in first.")


def guard(role: str | None = None) -> Callable[[Endpoint], Endpoint]:
    """Let a request through only when signed in (as ``role`` if given) and, if it changes
    state, carrying the CSRF token. The user is put in ``request.state.user``."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            user = await current_user(request)
            if user is None:
                return _signin_redirect(request)
            if request.method not in SAFE_METHODS:
                await check_csrf(request)
            if role is not None and user.role != role:
                raise HTTPException(403, f"This needs the {role} role.")
            request.state.user = user
            return await endpoint(request)

        return guarded

    return wrap


def same_origin(conn: HTTPConnection) -> bool:
    """The WebSocket handshake comes from our own pages (browsers always send ``Origin``)."""
    origin = conn.headers.get("origin")
    host = conn.headers.get("host")
    if not origin or not host:
        return False
    scheme = "https" if conn.url.scheme in ("https", "wss") else "http"
    return secrets.compare_digest(origin.encode(), f"{scheme}://{host}".encode())
