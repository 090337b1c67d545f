"""Per-org bookkeeping outside the records: access tokens, the API allocation, query cursors."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from ..ids import new_id

ROLLING_WINDOW = 24 * 3600.0
CURSOR_IDLE_SECONDS = 15 * 60.0
MAX_OPEN_CURSORS = 10


@dataclass
class _Token:
    user_id: str
    last_used: float


class TokenStore:
    """Opaque session tokens that die after ``idle_seconds`` without use, or on revocation."""

    def __init__(self, org_id: str, idle_seconds: float) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._prefix = org_id[:15]
        self.idle_seconds = idle_seconds

    def issue(self, user_id: str) -> str:
        token = f"{self._prefix}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._tokens[token] = _Token(user_id, time.monotonic())
        return token

    def check(self, token: str) -> bool:
        """True for a live token; each use resets its idle timer."""
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None:
                return False
            now = time.monotonic()
            if now - entry.last_used > self.idle_seconds:
                del self._tokens[token]
                return False
            entry.last_used = now
            return True

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()


class Allocation:
    """The rolling 24-hour request counter behind ``Sforce-Limit-Info``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: deque[float] = deque()

    def used(self) -> int:
        with self._lock:
            horizon = time.monotonic() - ROLLING_WINDOW
            while self._calls and self._calls[0] < horizon:
                self._calls.popleft()
            return len(self._calls)

    def set_used(self, value: int) -> None:
        with self._lock:
            self._calls = deque([time.monotonic()] * value)

    def take(self, maximum: int) -> bool:
        """Count one request unless ``maximum`` are already counted."""
        if self.used() >= maximum:
            return False
        with self._lock:
            self._calls.append(time.monotonic())
        return True


@dataclass
class Cursor:
    """A query result being paged through ``nextRecordsUrl``."""

    rows: list[dict]
    total: int
    batch: int
    last_used: float


class CursorStore:
    """Open query locators: they expire when idle, and only the newest ten stay open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()

    def open(self, rows: list[dict], total: int, batch: int) -> str:
        with self._lock:
            now = time.monotonic()
            for key, cur in list(self._cursors.items()):
                if now - cur.last_used > CURSOR_IDLE_SECONDS:
                    del self._cursors[key]
            while len(self._cursors) >= MAX_OPEN_CURSORS:
                self._cursors.popitem(last=False)  # Salesforce drops the oldest cursor
            key = new_id("01g")
            self._cursors[key] = Cursor(rows, total, batch, now)
            return key

    def get(self, key: str) -> Cursor | None:
        with self._lock:
            cur = self._cursors.get(key)
            now = time.monotonic()
            if cur is None or now - cur.last_used > CURSOR_IDLE_SECONDS:
                self._cursors.pop(key, None)
                return None
            cur.last_used = now
            return cur

    def close(self, key: str) -> None:
        with self._lock:
            self._cursors.pop(key, None)
