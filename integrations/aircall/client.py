"""The one way Callbridge talks to Aircall: httpx with Basic auth and the shared rate budget."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import Engine

from integrations.aircall import credentials
from integrations.errors import BudgetExhausted, RemoteRejected, RemoteUnavailable
from integrations.settings import Settings

log = logging.getLogger(__name__)

# Spends one request of the shared budget; returns seconds to wait (0 = go).
Budget = Callable[[], Awaitable[float]]
# Records "the service said: wait until" so every worker holds back.
Blocker = Callable[[float], Awaitable[None]]

# Longer waits for the shared budget go back to the queue: a worker slot held asleep is one the
# calls' Salesforce work cannot use.
MAX_BUDGET_WAIT = 1.0


def reset_time(value: str | None, now: float) -> float:
    """``X-AircallApi-Reset`` as epoch seconds; one client reads it as ms, so accept both."""
    try:
        reset = float(value) if value else 0.0
    except ValueError:
        reset = 0.0
    if reset > 1e11:
        reset /= 1000.0
    return reset if reset > now else now + 60.0


class AircallClient:
    """Aircall's public API v1, the calls Callbridge makes."""

    def __init__(self, http: httpx.AsyncClient, budget: Budget, blocker: Blocker) -> None:
        self._http = http
        self._budget = budget
        self._blocker = blocker

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        while wait := await self._budget():
            if wait > MAX_BUDGET_WAIT:
                raise BudgetExhausted(
                    "aircall", None, "rate budget spent", retry_at=time.time() + wait
                )
            await asyncio.sleep(wait)
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteUnavailable(
                "aircall", None, f"{type(exc).__name__}: {exc}", ambiguous=method != "GET"
            ) from exc
        if response.status_code < 300:
            return response.json() if response.content else None
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:2000]
        if response.status_code == 429:
            now = time.time()
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                until = now + int(retry_after)
            else:
                until = reset_time(response.headers.get("X-AircallApi-Reset"), now)
            await self._blocker(until)
            raise RemoteUnavailable("aircall", 429, body, retry_at=until)
        if response.status_code >= 500:
            retry_after = response.headers.get("Retry-After")
            retry_at = (
                time.time() + float(retry_after) if retry_after and retry_after.isdigit() else None
            )
            raise RemoteUnavailable("aircall", response.status_code, body, retry_at=retry_at)
        raise RemoteRejected("aircall", response.status_code, body)

    async def get_call(self, call_id: int) -> dict[str, Any]:
        return (await self._request("GET", f"/v1/calls/{call_id}"))["call"]

    async def list_calls(
        self, *, start: int, end: int, page: int = 1, per_page: int = 50
    ) -> dict[str, Any]:
        params = {"from": start, "to": end, "page": page, "per_page": per_page, "order": "asc"}
        return await self._request("GET", "/v1/calls", params=params)

    async def add_comment(self, call_id: int, content: str) -> None:
        await self._request("POST", f"/v1/calls/{call_id}/comments", json={"content": content})

    async def insight_card(self, call_id: int, contents: list[dict[str, Any]]) -> None:
        await self._request(
            "POST", f"/v1/calls/{call_id}/insight_cards", json={"contents": contents}
        )

    async def queue_dialer_numbers(self, user_id: int, numbers: list[str]) -> None:
        """Put numbers back in the agent's Power Dialer campaign."""
        await self._request(
            "POST",
            f"/v1/users/{user_id}/dialer_campaign/phone_numbers",
            json={"phone_numbers": numbers},
        )

    async def list_tags(self) -> list[dict[str, Any]]:
        """Every tag of the company (all pages)."""
        tags: list[dict[str, Any]] = []
        page = 1
        while True:
            result = await self._request("GET", "/v1/tags", params={"page": page, "per_page": 50})
            tags.extend(result.get("tags", []))
            if not (result.get("meta") or {}).get("next_page_link"):
                return tags
            page += 1

    async def create_tag(self, name: str, color: str) -> dict[str, Any]:
        return (await self._request("POST", "/v1/tags", json={"name": name, "color": color}))["tag"]

    async def tag_call(self, call_id: int, tag_ids: list[int]) -> None:
        await self._request("POST", f"/v1/calls/{call_id}/tags", json={"tags": tag_ids})

    async def search_contacts(self, phone_number: str) -> list[dict[str, Any]]:
        result = await self._request(
            "GET", "/v1/contacts/search", params={"phone_number": phone_number}
        )
        return result.get("contacts", [])

    async def create_contact(self, contact: dict[str, Any]) -> dict[str, Any]:
        return (await self._request("POST", "/v1/contacts", json=contact))["contact"]

    async def ping(self) -> None:
        """The cheapest authenticated request: proves an API ID and token work."""
        await self._request("GET", "/v1/ping")

    async def list_webhooks(self) -> list[dict[str, Any]]:
        """Every webhook of the company (all pages)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"page": page, "per_page": 50}
            result = await self._request("GET", "/v1/webhooks", params=params)
            found.extend(result.get("webhooks", []))
            if not (result.get("meta") or {}).get("next_page_link"):
                return found
            page += 1

    async def get_webhook(self, webhook_id: str) -> dict[str, Any]:
        return (await self._request("GET", f"/v1/webhooks/{webhook_id}"))["webhook"]

    async def create_webhook(self, name: str, url: str, events: list[str]) -> dict[str, Any]:
        body = {"custom_name": name, "url": url, "events": events}
        return (await self._request("POST", "/v1/webhooks", json=body))["webhook"]

    async def update_webhook(self, webhook_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """``PUT``: Aircall resets a webhook to all events when ``events`` is left out."""
        if not changes.get("events"):
            raise ValueError("a webhook update must list its events")
        return (await self._request("PUT", f"/v1/webhooks/{webhook_id}", json=changes))["webhook"]


def make_http(
    settings: Settings,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    engine: Engine | None = None,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """The httpx client for Aircall: Basic auth, short timeouts, ``SSL_CERT_FILE`` honoured.

    With ``engine``, the key entered on the Connections page is used when the environment has
    none, and a new one is picked up within seconds (``credentials.KeyAuth``)."""
    if auth is None:
        auth = credentials.KeyAuth(settings, engine)
    return httpx.AsyncClient(
        base_url=settings.aircall_api_url.rstrip("/"),
        auth=auth,
        timeout=httpx.Timeout(10.0, connect=3.0),
        headers={"Content-Type": "application/json"},
        transport=transport,
    )
