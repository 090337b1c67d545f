"""The Aircall REST API (``/v1``) over a :class:`Company`, plus ``/__emulator`` controls.

Requests to ``/v1`` pass the gateway of :mod:`.edge` first (authentication, rate limit,
injected faults). Handlers parse, call one company method and render; business errors arrive
as :class:`AircallError` and leave as ``{"error","troubleshoot"}``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .catalogue import MAX_PAGEABLE_ITEMS, MAX_PER_PAGE
from .company import Company
from .edge import Edge, QuietDrops, aircall_error, edge_not_found
from .errors import AircallError, BadRequest
from .faults import Fault

_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def create_app(company: Company | None = None) -> Starlette:
    """The emulator app; its company is ``app.state.company``."""
    company = company or Company()
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, QuietDrops) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(QuietDrops())
    app = Starlette(
        routes=_ROUTES,
        middleware=[Middleware(Edge, company=company)],
        exception_handlers={
            AircallError: aircall_error,
            HTTPException: edge_not_found,
        },
    )
    app.state.company = company
    return app


# -- helpers ----------------------------------------------------------------------------------


def _company(request: Request) -> Company:
    return request.app.state.company


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if raw and media_type != "application/json":
        raise BadRequest("Send the body as JSON, with Content-Type: application/json.")
    try:
        body = json.loads(raw) if raw else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("The body must be JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


def _int(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"'{name}' must be an integer.") from None


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value is not None and value not in allowed:
        raise BadRequest(f"'{name}' must be one of {', '.join(allowed)}.")
    return value


def _ordered(request: Request, items: list[dict]) -> list[dict]:
    """``order=asc`` (default) or ``desc`` on the list's natural order."""
    return items[::-1] if _choice(request, "order", ("asc", "desc")) == "desc" else items


def _page(request: Request, items: list[dict], key: str) -> JSONResponse:
    """One page with Aircall's ``meta``; at most 10,000 items can be reached by paging."""
    page = _int(request, "page", 1)
    per_page = _int(request, "per_page", 20)
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise BadRequest(f"per_page must be between 1 and {MAX_PER_PAGE}.")
    if page < 1:
        raise BadRequest("page must be 1 or more.")
    if page * per_page > MAX_PAGEABLE_ITEMS:
        raise BadRequest(
            f"Only the first {MAX_PAGEABLE_ITEMS} items can be paged: narrow the search "
            "with from and to."
        )
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]
    has_next = start + per_page < len(items) and (page + 1) * per_page <= MAX_PAGEABLE_ITEMS

    def link(number: int) -> str:
        return str(request.url.include_query_params(page=number, per_page=per_page))

    meta = {
        "count": len(chunk),
        "total": len(items),
        "current_page": page,
        "per_page": per_page,
        "next_page_link": link(page + 1) if has_next else None,
        "previous_page_link": link(page - 1) if page > 1 else None,
    }
    return JSONResponse({key: chunk, "meta": meta})


def _in_window(request: Request, items: list[dict], field: str) -> list[dict]:
    """``from``/``to`` (UNIX seconds, inclusive) on ``field``."""
    low, high = _int(request, "from"), _int(request, "to")
    return [
        item
        for item in items
        if (low is None or item[field] >= low) and (high is None or item[field] <= high)
    ]


# -- calls ------------------------------------------------------------------------------------


async def ping(request: Request) -> Response:
    return JSONResponse({"ping": "pong"})


async def list_calls(request: Request) -> Response:
    calls = _company(request).list_calls(
        fetch_contact=_flag(request, "fetch_contact"),
        started_from=_int(request, "from"),
        started_to=_int(request, "to"),
    )
    return _page(request, _ordered(request, calls), "calls")


async def search_calls(request: Request) -> Response:
    tag_values = request.query_params.getlist("tags[]") + request.query_params.getlist("tags")
    try:
        tag_ids = [int(value) for value in tag_values]
    except ValueError:
        raise BadRequest("'tags[]' must hold tag ids.") from None
    calls = _company(request).list_calls(
        fetch_contact=_flag(request, "fetch_contact"),
        started_from=_int(request, "from"),
        started_to=_int(request, "to"),
        direction=_choice(request, "direction", ("inbound", "outbound")),
        user_id=_int(request, "user_id"),
        phone_number=request.query_params.get("phone_number"),
        tag_ids=tag_ids,
    )
    return _page(request, _ordered(request, calls), "calls")


async def get_call(request: Request) -> Response:
    call = _company(request).call(
        request.path_params["call_id"], fetch_contact=_flag(request, "fetch_contact")
    )
    return JSONResponse({"call": call})


async def comment_call(request: Request) -> Response:
    body = await _body(request)
    _company(request).comment(request.path_params["call_id"], body.get("content"))
    return Response(status_code=201)


async def tag_call(request: Request) -> Response:
    body = await _body(request)
    _company(request).tag_by_ids(request.path_params["call_id"], body.get("tags"))
    return Response(status_code=201)


async def insight_card(request: Request) -> Response:
    body = await _body(request)
    _company(request).add_insight_card(request.path_params["call_id"], body.get("contents"))
    return Response(status_code=201)


# -- tags -------------------------------------------------------------------------------------


async def list_tags(request: Request) -> Response:
    return _page(request, _company(request).list_tags(), "tags")


async def create_tag(request: Request) -> Response:
    body = await _body(request)
    name, color = body.get("name"), body.get("color")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("'name' is required.")
    if not isinstance(color, str) or not _COLOR.match(color):
        raise BadRequest("'color' is required, as #RRGGBB.")
    return JSONResponse({"tag": _company(request).add_tag(name.strip(), color)}, 201)


# -- contacts ---------------------------------------------------------------------------------


async def list_contacts(request: Request) -> Response:
    order_by = _choice(request, "order_by", ("created_at", "updated_at")) or "created_at"
    contacts = sorted(_company(request).list_contacts(), key=lambda c: (c[order_by], c["id"]))
    return _page(request, _ordered(request, _in_window(request, contacts, order_by)), "contacts")


async def search_contacts(request: Request) -> Response:
    phone_number = request.query_params.get("phone_number")
    email = request.query_params.get("email")
    if phone_number is None and email is None:
        raise BadRequest("Search contacts by 'phone_number' and/or 'email'.")
    order_by = _choice(request, "order_by", ("created_at", "updated_at")) or "created_at"
    contacts = sorted(
        _company(request).search_contacts(phone_number, email), key=lambda c: (c[order_by], c["id"])
    )
    return _page(request, _ordered(request, _in_window(request, contacts, order_by)), "contacts")


def _scalars(body: dict[str, Any]) -> dict[str, Any]:
    fields = {}
    for key in ("first_name", "last_name", "company_name", "information"):
        if key in body:
            if body[key] is not None and not isinstance(body[key], str):
                raise BadRequest(f"'{key}' must be a string.")
            fields[key] = body[key]
    return fields


async def create_contact(request: Request) -> Response:
    body = await _body(request)
    if "phone_numbers" not in body:
        raise BadRequest("'phone_numbers' is mandatory.")
    contact = _company(request).create_contact(
        _scalars(body), body["phone_numbers"], body.get("emails", [])
    )
    return JSONResponse({"contact": contact}, 201)


async def get_contact(request: Request) -> Response:
    return JSONResponse({"contact": _company(request).contact(request.path_params["contact_id"])})


async def update_contact(request: Request) -> Response:
    body = await _body(request)
    contact = _company(request).update_contact(request.path_params["contact_id"], body)
    return JSONResponse({"contact": contact})


async def delete_contact(request: Request) -> Response:
    _company(request).delete_contact(request.path_params["contact_id"])
    return Response(status_code=204)


# -- users and the Power Dialer ---------------------------------------------------------------


async def list_users(request: Request) -> Response:
    users = [
        {k: v for k, v in user.items() if k != "numbers"} for user in _company(request).list_users()
    ]
    return _page(request, sorted(users, key=lambda user: user["id"]), "users")


async def get_user(request: Request) -> Response:
    return JSONResponse({"user": _company(request).user(request.path_params["user_id"])})


async def queue_dialer_numbers(request: Request) -> Response:
    body = await _body(request)
    _company(request).queue_dialer_numbers(
        request.path_params["user_id"], body.get("phone_numbers")
    )
    return Response(status_code=204)


async def dialer_numbers(request: Request) -> Response:
    return JSONResponse(
        {"numbers": _company(request).dialer_numbers(request.path_params["user_id"])}
    )


# -- webhooks ---------------------------------------------------------------------------------


async def list_webhooks(request: Request) -> Response:
    return _page(request, _company(request).list_webhooks(), "webhooks")


async def create_webhook(request: Request) -> Response:
    body = await _body(request)
    custom_name = body.get("custom_name", "Webhook")
    if not isinstance(custom_name, str):
        raise BadRequest("'custom_name' must be a string.")
    company = _company(request)
    webhook = company.create_webhook(
        body.get("url"),
        body.get("events"),
        custom_name,
        allow_loopback_http=company.loopback_http_webhooks,
    )
    return JSONResponse({"webhook": webhook}, 201)


async def get_webhook(request: Request) -> Response:
    return JSONResponse({"webhook": _company(request).webhook(request.path_params["webhook_id"])})


async def update_webhook(request: Request) -> Response:
    body = await _body(request)
    webhook = _company(request).update_webhook(
        request.path_params["webhook_id"], body, request.query_params.get("events_action")
    )
    return JSONResponse({"webhook": webhook})


async def delete_webhook(request: Request) -> Response:
    _company(request).delete_webhook(request.path_params["webhook_id"])
    return Response(status_code=204)


# -- emulator controls (no auth) --------------------------------------------------------------


async def add_fault(request: Request) -> Response:
    body = await _body(request)
    try:
        fault = Fault(**body)
    except (TypeError, ValueError, re.error) as exc:
        raise BadRequest(f"Not a fault: {exc}") from None
    _company(request).faults.add(fault)
    return JSONResponse({"faults": len(_company(request).faults)}, 201)


async def clear_faults(request: Request) -> Response:
    _company(request).faults.clear()
    return Response(status_code=204)


async def insight_cards(request: Request) -> Response:
    return JSONResponse({"insight_cards": _company(request).snapshot()["insight_cards"]})


async def state(request: Request) -> Response:
    return JSONResponse(_company(request).snapshot())


_ROUTES = [
    Route("/v1/ping", ping),
    Route("/v1/calls", list_calls),
    Route("/v1/calls/search", search_calls),
    Route("/v1/calls/{call_id:int}", get_call),
    Route("/v1/calls/{call_id:int}/comments", comment_call, methods=["POST"]),
    Route("/v1/calls/{call_id:int}/tags", tag_call, methods=["POST"]),
    Route("/v1/calls/{call_id:int}/insight_cards", insight_card, methods=["POST"]),
    Route("/v1/tags", list_tags),
    Route("/v1/tags", create_tag, methods=["POST"]),
    Route("/v1/contacts", list_contacts),
    Route("/v1/contacts", create_contact, methods=["POST"]),
    Route("/v1/contacts/search", search_contacts),
    Route("/v1/contacts/{contact_id:int}", get_contact),
    Route("/v1/contacts/{contact_id:int}", update_contact, methods=["POST"]),
    Route("/v1/contacts/{contact_id:int}", delete_contact, methods=["DELETE"]),
    Route("/v1/users", list_users),
    Route("/v1/users/{user_id:int}", get_user),
    Route("/v1/users/{user_id:int}/dialer_campaign/phone_numbers", dialer_numbers),
    Route(
        "/v1/users/{user_id:int}/dialer_campaign/phone_numbers",
        queue_dialer_numbers,
        methods=["POST"],
    ),
    Route("/v1/webhooks", list_webhooks),
    Route("/v1/webhooks", create_webhook, methods=["POST"]),
    Route("/v1/webhooks/{webhook_id}", get_webhook),
    Route("/v1/webhooks/{webhook_id}", update_webhook, methods=["PUT"]),
    Route("/v1/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
    Route("/__emulator/faults", add_fault, methods=["POST"]),
    Route("/__emulator/faults", clear_faults, methods=["DELETE"]),
    Route("/__emulator/insight_cards", insight_cards),
    Route("/__emulator/state", state),
]
