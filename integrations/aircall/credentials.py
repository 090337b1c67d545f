"""Aircall's secrets as Callbridge holds them: the API key and the webhook tokens, from the
environment (which wins) or entered on the Connections page (sealed in ``connections``).

Both are read on hot paths (every Aircall request, every webhook delivery), so what is stored is
kept a few seconds per process: a key or token saved in another process is used within ``TTL``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from base64 import b64encode
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Generic, TypeVar

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine

from integrations.errors import NotConfigured
from integrations.secrets import SecretBox
from integrations.settings import Settings
from integrations.store import connections

log = logging.getLogger(__name__)

TTL = 3.0  # seconds a stored key or webhook token is kept before it is read again
T = TypeVar("T")


class _Fresh(Generic[T]):
    """A per-engine value read at most every ``TTL`` seconds, which can be peeked at without
    reading (so the event loop never waits on the database for a fresh one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: weakref.WeakKeyDictionary[Engine, tuple[float, T]] = (
            weakref.WeakKeyDictionary()
        )

    def peek(self, engine: Engine) -> tuple[bool, T | None]:
        with self._lock:
            hit = self._values.get(engine)
        if hit is not None and time.monotonic() - hit[0] <= TTL:
            return True, hit[1]
        return False, None

    def get(self, engine: Engine, load: Callable[[], T]) -> T:
        fresh, value = self.peek(engine)
        if fresh:
            return value  # type: ignore[return-value]
        loaded = load()
        with self._lock:
            self._values[engine] = (time.monotonic(), loaded)
        return loaded

    def invalidate(self, engine: Engine) -> None:
        with self._lock:
            self._values.pop(engine, None)


_keys: _Fresh[tuple[str, str] | None] = _Fresh()
_tokens: _Fresh[tuple[SecretStr, ...]] = _Fresh()


def box(settings: Settings) -> SecretBox:
    """The SecretBox of ``CALLBRIDGE_SECRET_KEY``; ``NotConfigured`` (saying how) without one."""
    return SecretBox(settings.callbridge_secret_key.get_secret_value())


def _open(settings: Settings, engine: Engine, name: str) -> connections.Connection | None:
    """A stored connection, or None when there is none or it cannot be opened (logged)."""
    if not settings.callbridge_secret_key.get_secret_value():
        return None
    try:
        return connections.load(engine, box(settings), name)
    except NotConfigured as exc:
        log.warning("aircall.stored_secret_unreadable", extra={"connection": name, "why": str(exc)})
        return None


def env_key(settings: Settings) -> tuple[str, str] | None:
    token = settings.aircall_api_token.get_secret_value()
    return (settings.aircall_api_id, token) if settings.aircall_api_id and token else None


def api_key(settings: Settings, engine: Engine | None) -> tuple[str, str] | None:
    """The API ID and token to use: the environment's, else the stored ones, else None."""
    if (key := env_key(settings)) is not None or engine is None:
        return key

    def load() -> tuple[str, str] | None:
        stored = _open(settings, engine, connections.AIRCALL)
        if stored is None or not stored.secret.get("api_token"):
            return None
        return stored.details.get("api_id", ""), stored.secret["api_token"]

    return _keys.get(engine, load)


def save_key(
    settings: Settings, engine: Engine, api_id: str, api_token: str, *, by: str = ""
) -> None:
    """Store a key (checked by the caller first): the token sealed, the ID shown."""
    sealed = box(settings)
    connections.save(
        engine, sealed, connections.AIRCALL, {"api_token": api_token}, {"api_id": api_id}, by=by
    )
    _keys.invalidate(engine)


def save_webhook_token(
    settings: Settings, engine: Engine, token: str, details: dict[str, Any], *, by: str = ""
) -> None:
    """Store the token of the webhook Callbridge registered, with what may be shown of it."""
    connections.save(
        engine, box(settings), connections.AIRCALL_WEBHOOK, {"token": token}, details, by=by
    )
    _tokens.invalidate(engine)


def _stored_tokens(settings: Settings, engine: Engine) -> tuple[SecretStr, ...]:
    stored = _open(settings, engine, connections.AIRCALL_WEBHOOK)
    token = stored.secret.get("token") if stored is not None else None
    return (SecretStr(token),) if isinstance(token, str) and token else ()


async def webhook_tokens(settings: Settings, engine: Engine) -> list[SecretStr]:
    """Tokens a delivery may carry: ``AIRCALL_WEBHOOK_TOKENS`` and the registered webhook's.

    The stored one is read at most every ``TTL`` seconds, in a thread: never on each delivery.
    """
    fresh, stored = _tokens.peek(engine)
    if not fresh:
        stored = await asyncio.to_thread(
            _tokens.get, engine, lambda: _stored_tokens(settings, engine)
        )
    return [*settings.aircall_webhook_tokens, *(stored or ())]


class KeyAuth(httpx.Auth):
    """Basic auth with the key of the moment (``api_key``): one saved on the Connections page
    is used by running workers without a restart."""

    def __init__(self, settings: Settings, engine: Engine | None) -> None:
        self._settings = settings
        self._engine = engine

    def _sign(self, request: httpx.Request, key: tuple[str, str] | None) -> httpx.Request:
        if key is not None:  # none: Aircall answers 401, which says what is missing
            request.headers["Authorization"] = "Basic " + b64encode(":".join(key).encode()).decode()
        return request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        yield self._sign(request, api_key(self._settings, self._engine))

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        key = env_key(self._settings)
        if key is None and self._engine is not None:
            fresh, key = _keys.peek(self._engine)
            if not fresh:
                key = await asyncio.to_thread(api_key, self._settings, self._engine)
        yield self._sign(request, key)
