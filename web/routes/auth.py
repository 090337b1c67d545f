"""Signing in and out, and the HTML error page."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from integrations.store import accounts
from web import security


async def signin_form(request: Request) -> Response:
    return await _form(request, error="", email="", status=200)


async def _form(
    request: Request, *, error: str, email: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    engine = request.app.state.engine
    no_accounts = await run_in_threadpool(accounts.count_users, engine) == 0
    return request.app.state.templates.TemplateResponse(
        request,
        "pages/signin.html",
        {
            "error": error,
            "email": email,
            "next": security.safe_next(request.query_params.get("next")),
            "no_accounts": no_accounts,
        },
        status_code=status,
        headers=headers,
    )


async def signin(request: Request) -> Response:
    await security.check_csrf(request)
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    try:
        user = await run_in_threadpool(
            accounts.sign_in,
            request.app.state.engine,
            email,
            password,
            ip=security.client_ip(request),
            limits=accounts.SignInLimits.from_settings(request.app.state.settings),
        )
    except accounts.TooManyFailures as exc:
        return await _form(
            request,
            error=str(exc),
            email=email,
            status=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if user is None:
        return await _form(
            request, error="Email or password is incorrect.", email=email, status=400
        )
    await security.sign_in(request, user)
    return RedirectResponse(security.safe_next(str(form.get("next", ""))), status_code=303)


@security.guard()
async def signout(request: Request) -> Response:
    await security.sign_out(request)
    return RedirectResponse("/signin", status_code=303)


async def http_error(request: Request, exc: Exception) -> Response:
    """Errors of the pages as a short HTML page (or a bare message for htmx to show)."""
    assert isinstance(exc, HTTPException)  # noqa: S101  (registered for HTTPException only)
    if request.headers.get("HX-Request"):
        return Response(exc.detail, status_code=exc.status_code, media_type="text/plain")
    return request.app.state.templates.TemplateResponse(
        request,
        "pages/error.html",
        {"status": exc.status_code, "detail": exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,
    )
