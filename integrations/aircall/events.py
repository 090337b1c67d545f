"""Aircall webhook deliveries: authenticate, check the envelope, and name the delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from integrations import safejson
from integrations.errors import BadInput, BadToken

MAX_BODY = 1024 * 1024  # Aircall's payloads are a few KiB; refuse anything over 1 MiB

_NAME = re.compile(r"[a-z][a-z0-9_.]{0,79}")  # call.ended, user.created.v2, summary.created

# UNIX seconds of 3000-01-01: later ones pass for integers but no date (in any time zone) can
# hold them, and the pages that show a day would fail on the row.
LAST_TIMESTAMP = 32_503_680_000

# The delivery key's JSON; one encoder for every delivery (``json.dumps`` makes one a call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)

# Order of a call's life, so two snapshots taken in the same second can still be ranked.
STATUS_RANK = {"initial": 0, "answered": 1, "done": 2}


@dataclass(frozen=True)
class WebhookEvent:
    """One authenticated delivery. ``delivery_key`` is equal for Aircall's retries of it."""

    event: str
    resource: str
    timestamp: int
    data: dict[str, Any]
    delivery_key: str
    # ``data`` as JSON (keys sorted), made once while parsing: the delivery key, the stored
    # envelope and the call's snapshot are all written from it. None: serialise ``data``.
    data_json: safejson.Checked | None = None

    @property
    def call_id(self) -> int | None:
        if self.event.startswith("call."):
            return self.data["id"]
        call_id = self.data.get("call_id")
        return call_id if isinstance(call_id, int) and not isinstance(call_id, bool) else None

    def stored(self) -> dict[str, Any]:
        """The envelope as we keep it: everything but the token."""
        return {
            "resource": self.resource,
            "event": self.event,
            "timestamp": self.timestamp,
            "data": self.data,
        }

    def stored_json(self) -> dict[str, Any] | safejson.Checked:
        """``stored()`` for a JSON column: as text when parsed here (written as it is)."""
        if self.data_json is None:
            return self.stored()
        # The names passed _NAME (no character to escape) and the timestamp is an int.
        return safejson.Checked(
            f'{{"resource":"{self.resource}","event":"{self.event}",'
            f'"timestamp":{self.timestamp},"data":{self.data_json}}}'
        )

    def snapshot_json(self) -> dict[str, Any] | safejson.Checked:
        """``data`` for a JSON column: the text made while parsing, if any."""
        return self.data if self.data_json is None else self.data_json


def _token_matches(token: object, tokens: list[SecretStr]) -> bool:
    """A missing or non-string token is a wrong one: 401 too, and the same time taken."""
    given = token.encode("utf-8", "surrogatepass") if isinstance(token, str) else b""
    found = False
    for candidate in tokens:  # compare with every token: the time taken says nothing
        found |= hmac.compare_digest(given, candidate.get_secret_value().encode())
    return found and isinstance(token, str)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse(body: bytes, tokens: list[SecretStr]) -> WebhookEvent:
    """Turn a raw delivery into an event, or raise ``BadToken`` / ``BadInput``."""
    envelope = safejson.loads(body)  # no NaN, lone surrogate, deep nesting or huge integer
    if not isinstance(envelope, dict):
        raise BadInput("body must be a JSON object")
    token = envelope.get("token")
    if not _token_matches(token, tokens):
        raise BadToken("unknown webhook token")
    event, resource = envelope.get("event"), envelope.get("resource")
    timestamp, data = envelope.get("timestamp"), envelope.get("data")
    if not isinstance(event, str) or not _NAME.fullmatch(event):
        raise BadInput("event must be an event name such as call.ended")
    if not isinstance(resource, str) or not (resource == "" or _NAME.fullmatch(resource)):
        raise BadInput("resource must be a resource name such as call")
    if not _is_int(timestamp) or not 0 <= timestamp < LAST_TIMESTAMP:
        raise BadInput("timestamp must be UNIX seconds")
    if not isinstance(data, dict):
        raise BadInput("data must be an object")
    if event.startswith("call."):
        _check_call(data)
    if "id" in data and (not _is_int(data["id"]) or not 0 <= data["id"] < 2**63):
        raise BadInput("data.id must be an integer")
    # The same text as json.dumps({"event", "timestamp", "data"}, sort_keys=True, compact,
    # ensure_ascii): the keys of stored deliveries, so Aircall's retries across versions match.
    data_json = _CANONICAL.encode(data)
    canonical = f'{{"data":{data_json},"event":"{event}","timestamp":{timestamp}}}'
    return WebhookEvent(
        event=event,
        resource=resource,
        timestamp=timestamp,
        data=data,
        delivery_key=hashlib.sha256(canonical.encode()).hexdigest(),
        data_json=safejson.Checked(data_json),  # strict input: nothing to scrub
    )


def _check_call(data: dict[str, Any]) -> None:
    """The fields the pipeline relies on; everything else Aircall sends is kept as is."""
    if not _is_int(data.get("id")) or not 0 < data["id"] < 2**63:
        raise BadInput("data.id must be a positive integer for call events")
    if data.get("direction") not in ("inbound", "outbound"):
        raise BadInput("data.direction must be inbound or outbound")
    if not isinstance(data.get("status"), str) or data["status"] not in STATUS_RANK:
        raise BadInput("data.status must be initial, answered or done")
    for key, top in (
        ("started_at", LAST_TIMESTAMP),
        ("answered_at", LAST_TIMESTAMP),
        ("ended_at", LAST_TIMESTAMP),
        ("duration", 2**31),
    ):
        if data.get(key) is not None and not (_is_int(data[key]) and 0 <= data[key] < top):
            raise BadInput(f"data.{key} must be a non-negative integer")
    for key in ("user", "contact", "number"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise BadInput(f"data.{key} must be an object")
    for key in ("tags", "comments"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise BadInput(f"data.{key} must be a list of objects")
    if data.get("raw_digits") is not None and not isinstance(data["raw_digits"], str):
        raise BadInput("data.raw_digits must be a string")
