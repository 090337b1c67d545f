"""In-memory state of one Aircall company: people, numbers, tags, webhooks, the dialer.

Calls are in :mod:`.calls`, contacts in :mod:`.contacts`, webhook deliveries in :mod:`.deliveries`;
``Company`` joins them.

Every public method takes the company lock, so tests may drive it from any thread while the
REST app and the webhook sender use it from their event loops. Objects are stored in the shape
the REST API returns them; webhook payloads are derived from them at the moment of the event.
"""

from __future__ import annotations

import copy
import itertools
import re
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .calls import CallLifecycle
from .catalogue import (
    ALL_EVENTS,
    API_HOST,
    DEFAULT_TAGS,
    MAX_WEBHOOKS,
    display,
    e164,
    iso,
)
from .contacts import ContactBook
from .deliveries import DeliveryLog
from .errors import BadRequest, NotFound, Unprocessable
from .faults import FaultPlan

_USER_SHORT_KEYS = (
    "id",
    "direct_link",
    "name",
    "email",
    "available",
    "availability_status",
    "language",
    "wrap_up_time",
)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Company(CallLifecycle, ContactBook, DeliveryLog):
    """One Aircall company; its calls' lifecycle is in :class:`CallLifecycle`, contacts in
    :class:`ContactBook`, webhook bookkeeping in :class:`DeliveryLog`."""

    def __init__(
        self,
        *,
        api_id: str = "emulator-id",
        api_token: str = "emulator-token",  # noqa: S107 - a fake for the fake API
        rate_limit: int = 120,
        clock: Callable[[], float] = time.time,
        loopback_http_webhooks: bool = False,
    ) -> None:
        super().__init__(clock)
        # Tests and the demo serve Callbridge over plain http on loopback: let the REST API
        # accept such webhook URLs too (any other http URL is still refused, as Aircall does).
        self.loopback_http_webhooks = loopback_http_webhooks
        self.api_id = api_id
        self.api_token = api_token
        self.rate_limit = rate_limit
        self.requests_made = 0
        self.faults = FaultPlan()
        self.users: dict[int, dict] = {}
        self.numbers: dict[int, dict] = {}
        self.tags: dict[int, dict] = {}
        self.dialer_campaigns: dict[int, list[str]] = {}
        self._dialer_entries: dict[int, list[dict]] = {}
        self._ids = {
            kind: itertools.count(start)
            for kind, start in (
                ("user", 731_401),
                ("number", 397_301),
                ("tag", 2_725_501),
                ("contact", 482_884_001),
                ("detail", 1_818_273_001),
                ("call", 1_780_836_701),
                ("comment", 24_923_401),
                ("summary", 9_100_001),
                ("dialer", 5_500_001),
            )
        }
        self._window = (-1, 0)  # (minute number, requests counted in it)
        for name, color, description in DEFAULT_TAGS:
            self._new_tag(name, color, description)

    def _next_id(self, kind: str) -> int:
        return next(self._ids[kind])

    def _now(self) -> int:
        return int(self.clock())

    # -- rate limit ---------------------------------------------------------------------------

    def admit_request(self) -> tuple[bool, dict[str, str]]:
        """Count one API request against the per-company budget.

        A fixed window per UTC minute (``floor(now / 60)``), reset at the next minute boundary:
        simpler than a rolling window, and no more lenient within one window. Refused requests
        are not counted. Returns whether it is admitted and the ``X-AircallApi-*`` headers.
        """
        with self._lock:
            now = self.clock()
            minute = int(now // 60)
            used = self._window[1] if self._window[0] == minute else 0
            allowed = used < self.rate_limit
            if allowed:
                used += 1
                self.requests_made += 1
            self._window = (minute, used)
            headers = {
                "X-AircallApi-Limit": str(self.rate_limit),
                "X-AircallApi-Remaining": str(max(self.rate_limit - used, 0)),
                "X-AircallApi-Reset": str((minute + 1) * 60),
            }
            return allowed, headers

    # -- users, numbers, tags -----------------------------------------------------------------

    def add_user(self, name: str, email: str) -> dict:
        with self._lock:
            user_id = self._next_id("user")
            user = {
                "id": user_id,
                "direct_link": f"{API_HOST}/v1/users/{user_id}",
                "name": name,
                "email": email,
                "available": True,
                "availability_status": "available",
                "language": "en-US",
                "wrap_up_time": 0,
                "created_at": iso(self.clock()),
                "time_zone": "America/New_York",
                "numbers": [_number_short(number) for number in self.numbers.values()],
            }
            self.users[user_id] = user
            for number in self.numbers.values():
                number["users"].append(self._user_short(user_id))
            return copy.deepcopy(user)

    def add_number(
        self, name: str, digits: str, country: str = "US", time_zone: str = "America/New_York"
    ) -> dict:
        with self._lock:
            number_id = self._next_id("number")
            number = {
                "id": number_id,
                "direct_link": f"{API_HOST}/v1/numbers/{number_id}",
                "name": name,
                "digits": display(digits),
                "country": country,
                "time_zone": time_zone,
                "open": True,
                "availability_status": "open",
                "is_ivr": False,
                "live_recording_activated": True,
                "priority": None,
                "created_at": iso(self.clock()),
                "messages": {},
                "users": [self._user_short(user_id) for user_id in self.users],
            }
            self.numbers[number_id] = number
            for user in self.users.values():
                user["numbers"].append(_number_short(number))
            return copy.deepcopy(number)

    def add_tag(self, name: str, color: str = "#00B388") -> dict:
        with self._lock:
            return copy.deepcopy(self._new_tag(name, color, None))

    def _new_tag(self, name: str, color: str, description: str | None) -> dict:
        if not name.strip():
            raise BadRequest("Tag name can't be blank.")
        if self._tag_named(name) is not None:
            raise BadRequest(f"Tag name '{name}' has already been taken.")
        tag_id = self._next_id("tag")
        tag = {
            "id": tag_id,
            "direct_link": f"{API_HOST}/v1/tags/{tag_id}",
            "name": name,
            "color": color,
            "description": description,
        }
        self.tags[tag_id] = tag
        return tag

    def _tag_named(self, name: str) -> dict | None:
        """Tag names are unique company-wide, compared without case."""
        wanted = name.strip().casefold()
        return next((t for t in self.tags.values() if t["name"].casefold() == wanted), None)

    def _user(self, user_id: int) -> dict:
        try:
            return self.users[user_id]
        except KeyError:
            raise NotFound(f"User {user_id} not found.") from None

    def _user_short(self, user_id: int) -> dict:
        user = self._user(user_id)
        return {key: user[key] for key in _USER_SHORT_KEYS}

    def user(self, user_id: int) -> dict:
        with self._lock:
            return copy.deepcopy(self._user(user_id))

    def list_users(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self.users.values()))

    def list_tags(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self.tags.values()))

    # -- webhooks -----------------------------------------------------------------------------

    def add_webhook(
        self,
        url: str,
        events: list[str] | None = None,
        custom_name: str = "Webhook",
        *,
        token: str | None = None,
    ) -> dict:
        """A webhook for tests and the demo: plain http is allowed to loopback hosts only, and
        ``token`` (32 hex characters) may be chosen so a receiver can be configured first."""
        return self.create_webhook(url, events, custom_name, token=token, allow_loopback_http=True)

    def create_webhook(
        self,
        url: str,
        events: list[str] | None,
        custom_name: str = "Webhook",
        *,
        token: str | None = None,
        allow_loopback_http: bool = False,
    ) -> dict:
        _check_webhook_url(url, allow_loopback_http)
        chosen = _check_events(events)
        if token is not None and not re.fullmatch(r"[0-9a-f]{32}", token):
            raise BadRequest("A webhook token is 32 lowercase hexadecimal characters.")
        with self._lock:
            if len(self.webhooks) >= MAX_WEBHOOKS:
                raise BadRequest(f"A company can have at most {MAX_WEBHOOKS} webhooks.")
            webhook_id = str(uuid.uuid4())
            webhook = {
                "webhook_id": webhook_id,
                "direct_link": f"{API_HOST}/v1/webhooks/{webhook_id}",
                "created_at": iso(self.clock()),
                "url": url,
                "active": True,
                "events": chosen,
                "token": token or secrets.token_hex(16),
                "custom_name": custom_name,
            }
            self._register_webhook(webhook)
            return copy.deepcopy(webhook)

    def _webhook(self, webhook_id: str) -> dict:
        try:
            return self.webhooks[webhook_id]
        except KeyError:
            raise NotFound(f"Webhook {webhook_id} not found.") from None

    def webhook(self, webhook_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._webhook(webhook_id))

    def list_webhooks(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self.webhooks.values()))

    def update_webhook(
        self, webhook_id: str, changes: dict[str, Any], events_action: str | None = None
    ) -> dict:
        """``PUT /v1/webhooks/{id}``. As Aircall does, a PUT without ``events`` resets the
        webhook to all events; ``events_action=add|remove`` edits the list instead."""
        unknown = set(changes) - {"url", "custom_name", "events", "active"}
        if unknown:
            raise BadRequest(f"Unknown webhook fields: {sorted(unknown)}.")
        if "url" in changes:
            _check_webhook_url(changes["url"], self.loopback_http_webhooks)
        if "active" in changes and not isinstance(changes["active"], bool):
            raise BadRequest("'active' must be true or false.")
        if events_action not in (None, "add", "remove"):
            raise BadRequest("events_action must be 'add' or 'remove'.")
        given = changes.get("events")
        with self._lock:
            webhook = self._webhook(webhook_id)
            if events_action is None:
                events = _check_events(given)
            else:
                if not given:
                    raise BadRequest("events_action needs a non-empty 'events' list.")
                listed = _check_events(given)
                if events_action == "add":
                    events = webhook["events"] + [e for e in listed if e not in webhook["events"]]
                else:
                    events = [e for e in webhook["events"] if e not in listed]
            webhook["events"] = events
            for key in ("url", "custom_name"):
                if key in changes:
                    webhook[key] = changes[key]
            if "active" in changes:
                self._set_active(webhook_id, changes["active"])
            return copy.deepcopy(webhook)

    def delete_webhook(self, webhook_id: str) -> None:
        with self._lock:
            self._webhook(webhook_id)
            del self.webhooks[webhook_id]

    # -- dialer -------------------------------------------------------------------------------

    def queue_dialer_numbers(self, user_id: int, phone_numbers: list[str]) -> None:
        """Power Dialer queue of a user. A number already queued is refused (422, as real
        clients report "already imported"), and then nothing of the request is added."""
        if not isinstance(phone_numbers, list) or not phone_numbers:
            raise BadRequest("'phone_numbers' must be a non-empty list.")
        normalised = []
        for value in phone_numbers:
            number = e164(value) if isinstance(value, str) else None
            if number is None:
                raise BadRequest(f"Phone number '{value}' is invalid.")
            normalised.append(number)
        with self._lock:
            self._user(user_id)
            queued = self.dialer_campaigns.setdefault(user_id, [])
            entries = self._dialer_entries.setdefault(user_id, [])
            duplicates = [n for n in normalised if n in queued]
            if duplicates or len(set(normalised)) != len(normalised):
                raise Unprocessable(f"Phone numbers already imported: {duplicates or normalised}.")
            for number in normalised:
                queued.append(number)
                entries.append(
                    {
                        "id": self._next_id("dialer"),
                        "number": number,
                        "called": False,
                        "created_at": iso(self.clock()),
                    }
                )

    def dialer_numbers(self, user_id: int) -> list[dict]:
        """The queue; 404 when the user has no campaign (nothing ever queued)."""
        with self._lock:
            self._user(user_id)
            if user_id not in self._dialer_entries:
                raise NotFound(f"User {user_id} has no dialer campaign.")
            return copy.deepcopy(self._dialer_entries[user_id])

    # -- inspection ---------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Everything the emulator holds, JSON-ready (``GET /__emulator/state``)."""
        with self._lock:
            return copy.deepcopy(
                {
                    "requests_made": self.requests_made,
                    "rate_limit": self.rate_limit,
                    "users": list(self.users.values()),
                    "numbers": list(self.numbers.values()),
                    "tags": list(self.tags.values()),
                    "contacts": list(self.contacts.values()),
                    "calls": list(self.calls.values()),
                    "webhooks": list(self.webhooks.values()),
                    "insight_cards": self.insight_cards,
                    "dialer_campaigns": {str(k): v for k, v in self.dialer_campaigns.items()},
                    "deliveries": [
                        {k: v for k, v in d.items() if k != "envelope"} for d in self.deliveries
                    ],
                }
            )


def _number_short(number: dict) -> dict:
    """A number as embedded in users and calls: without its ``users``."""
    return copy.deepcopy({key: value for key, value in number.items() if key != "users"})


def _check_webhook_url(url: object, allow_loopback_http: bool) -> None:
    if not isinstance(url, str):
        raise BadRequest("'url' is required.")
    parts = urlsplit(url)
    if not parts.hostname:
        raise BadRequest(f"'{url}' is not a valid URL.")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and allow_loopback_http and parts.hostname in _LOOPBACK_HOSTS:
        return
    raise BadRequest("Webhook URL must use HTTPS.")


def _check_events(events: object) -> list[str]:
    """The subscribed events; none or an empty list means every event."""
    if events is None or events == []:
        return list(ALL_EVENTS)
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise BadRequest("'events' must be a list of event names.")
    invalid = sorted(set(events) - set(ALL_EVENTS))
    if invalid:
        raise BadRequest(f"Invalid events: {', '.join(invalid)}.")
    return list(dict.fromkeys(events))
