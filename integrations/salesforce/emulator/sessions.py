"""Per-org bookkeeping outside the records: access tokens, the web-server flow's codes and
refresh tokens, the API allocation, query cursors."""

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

    def user_of(self, token: str) -> str | None:
        """The user a live token acts as (its idle timer reset), or None."""
        if not self.check(token):
            return None
        with self._lock:
            entry = self._tokens.get(token)
            return entry.user_id if entry else None

    def revoke(self, token: str) -> bool:
        with self._lock:
            return self._tokens.pop(token, None) is not None

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()


@dataclass
class Code:
    """An authorization code: single use, short-lived, bound to its client, redirect_uri and
    PKCE challenge."""

    client_id: str
    redirect_uri: str
    challenge: str
    user_id: str
    scope: str
    expires: float


@dataclass
class Grant:
    """A refresh token and the access tokens issued from it (revoked together)."""

    client_id: str
    user_id: str
    scope: str
    access_tokens: set[str]


class WebServerFlow:
    """The org's External Client App as the web-server flow sees it: its callback URLs, the
    "Require secret" and "Require PKCE" switches, the users' passwords for the sign-in page,
    and the codes and refresh tokens issued. Access tokens live in ``TokenStore``, so a forced
    session expiry (``revoke_all``) leaves refresh tokens working, as in Salesforce."""

    def __init__(self, tokens: TokenStore) -> None:
        self._lock = threading.Lock()
        self._tokens = tokens
        self.callback_urls: list[str] = []
        self.require_secret = True  # Salesforce's default for the web-server and refresh flows
        self.require_pkce = True  # the default for new External Client Apps
        self.code_seconds = 15 * 60.0
        self._passwords: dict[str, str] = {}
        self._codes: dict[str, Code] = {}
        self._grants: dict[str, Grant] = {}

    def add_callback(self, url: str) -> None:
        self.callback_urls.append(url)

    def set_password(self, username: str, password: str) -> None:
        self._passwords[username.lower()] = password

    def password_of(self, username: str) -> str | None:
        return self._passwords.get(username.lower())

    def new_code(self, code: Code) -> str:
        value = secrets.token_urlsafe(48)
        with self._lock:
            self._codes[value] = code
        return value

    def take_code(self, value: str) -> Code | None:
        """The code's grant, once: any exchange attempt uses it up (expired or not)."""
        with self._lock:
            return self._codes.pop(value, None)

    def issue(self, client_id: str, user_id: str, scope: str) -> tuple[str, str | None]:
        """A new access token, and a refresh token when the scope asks for one."""
        access = self._tokens.issue(user_id)
        if "refresh_token" not in scope.split():
            return access, None
        refresh = f"5Aep{secrets.token_urlsafe(64)}"
        with self._lock:
            self._grants[refresh] = Grant(client_id, user_id, scope, {access})
        return access, refresh

    def grant(self, refresh: str) -> Grant | None:
        with self._lock:
            return self._grants.get(refresh)

    def refresh(self, refresh: str) -> str | None:
        """A new access token from a live refresh token (which stays valid: no rotation)."""
        with self._lock:
            grant = self._grants.get(refresh)
            if grant is None:
                return None
            access = self._tokens.issue(grant.user_id)
            grant.access_tokens.add(access)
            return access

    def revoke(self, token: str) -> bool:
        """Revoke a refresh token (with its access tokens) or one access token."""
        with self._lock:
            grant = self._grants.pop(token, None)
        if grant is not None:
            for access in grant.access_tokens:
                self._tokens.revoke(access)
            return True
        return self._tokens.revoke(token)

    def live_refresh_tokens(self) -> int:
        with self._lock:
            return len(self._grants)


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
