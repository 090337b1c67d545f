"""The life of a call: what each step changes on the Call object and which events it fires.

Each step returns the call as ``GET /v1/calls/{id}`` would show it afterwards. Webhook payloads
are built at the moment of the event from the stored call, with the quirks seen in real traffic:
``call_uuid`` instead of ``sid``, ``participants``, no ``user`` key on an inbound call before it
rings on an agent, no ``contact`` key when no contact matches the caller.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .catalogue import API_HOST, MAX_COMMENTS, MISSED_CALL_REASONS, display, e164, iso
from .errors import BadRequest, NotFound

_CALL_KEYS = (
    "id",
    "sid",
    "direct_link",
    "direction",
    "status",
    "missed_call_reason",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "cost",
    "hangup_cause",
    "voicemail",
    "recording",
    "asset",
    "raw_digits",
    "user",
    "contact",
    "number",
    "assigned_to",
    "archived",
    "teams",
    "comments",
    "tags",
)
_CARD_FIELDS = {  # type: (required, optional)
    "title": ({"text"}, {"link"}),
    "shortText": ({"text"}, {"label", "link"}),
    "user": ({"user_id"}, {"label"}),
}
_EMOJI = re.compile("[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff\ufe0f\u200d]")
_MEDIA_HOST = "https://media.aircall-emulator.invalid"


@dataclass
class _CallNotes:
    external: str | None  # E.164, None for anonymous
    voicemail: bool = False
    ended: bool = False


class CallLifecycle:
    """Call steps of :class:`Company` (which provides users, numbers, tags and contacts)."""

    _lock: threading.Lock
    clock: Callable[[], float]
    users: dict[int, dict]
    numbers: dict[int, dict]
    tags: dict[int, dict]
    _emit: Callable[[str, str, dict], None]
    _next_id: Callable[[str], int]
    _now: Callable[[], int]
    _user_short: Callable[[int], dict]
    _tag_named: Callable[[str], dict | None]
    _contact_for_phone: Callable[[str | None], dict | None]

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(clock)  # type: ignore[call-arg]
        self.calls: dict[int, dict] = {}
        self.insight_cards: list[dict] = []
        self._notes: dict[int, _CallNotes] = {}

    def _at(self, at: float | None) -> int:
        return int(self.clock() if at is None else at)

    def _call(self, call_id: int) -> dict:
        try:
            return self.calls[call_id]
        except KeyError:
            raise NotFound(f"Call {call_id} not found.") from None

    # -- steps --------------------------------------------------------------------------------

    def start_call(
        self,
        *,
        direction: str,
        external: str,
        number_id: int,
        user_id: int | None = None,
        at: float | None = None,
    ) -> dict:
        """``call.created`` (status ``initial``), then ``call.ringing_on_agent`` for an inbound
        call given an agent. An outbound call is always started by an agent."""
        if direction not in ("inbound", "outbound"):
            raise BadRequest("direction must be 'inbound' or 'outbound'.")
        if direction == "outbound" and user_id is None:
            raise BadRequest("An outbound call is started by an agent: user_id is required.")
        phone = None if external == "anonymous" and direction == "inbound" else e164(external)
        if phone is None and external != "anonymous":
            raise BadRequest(f"'{external}' is not a phone number.")
        if phone is None and direction == "outbound":
            raise BadRequest("An outbound call needs a phone number.")
        with self._lock:
            try:
                number = self.numbers[number_id]
            except KeyError:
                raise NotFound(f"Number {number_id} not found.") from None
            agent = self._user_short(user_id) if user_id is not None else None
            call_id = self._next_id("call")
            call = {
                "id": call_id,
                "sid": "CA" + secrets.token_hex(16),
                "direct_link": f"{API_HOST}/v1/calls/{call_id}",
                "direction": direction,
                "status": "initial",
                "missed_call_reason": None,
                "started_at": self._at(at),
                "answered_at": None,
                "ended_at": None,
                "duration": 0,
                "cost": "0.0",
                "hangup_cause": None,
                "voicemail": None,
                "recording": None,
                "asset": None,
                "raw_digits": display(phone) if phone else "anonymous",
                "contact": None,
                "number": copy.deepcopy({k: v for k, v in number.items() if k != "users"}),
                "assigned_to": None,
                "archived": False,
                "teams": [],
                "comments": [],
                "tags": [],
            }
            if direction == "outbound":
                call["user"] = agent
            self.calls[call_id] = call
            self._notes[call_id] = _CallNotes(external=phone)
            self._emit_call("call.created", call_id)
            if direction == "inbound" and agent is not None:
                call["user"] = agent
                self._emit_call("call.ringing_on_agent", call_id)
            return self._rest_call(call_id, fetch_contact=False)

    def answer(self, call_id: int, user_id: int | None = None, at: float | None = None) -> dict:
        """``call.answered``: an agent picks up (inbound) or the callee does (outbound)."""
        with self._lock:
            call = self._call(call_id)
            if call["status"] != "initial":
                raise BadRequest(f"Call {call_id} is {call['status']}: it can't be answered.")
            if user_id is not None:
                agent = self._user_short(user_id)
                if call["direction"] == "outbound" and agent["id"] != call["user"]["id"]:
                    raise BadRequest("An outbound call stays with the agent who made it.")
                call["user"] = agent
            if "user" not in call:
                raise BadRequest("An inbound call is answered by an agent: give user_id.")
            answered_at = self._at(at)
            if answered_at < call["started_at"]:
                raise BadRequest("A call can't be answered before it started.")
            call.update(status="answered", answered_at=answered_at)
            self._emit_call("call.answered", call_id)
            return self._rest_call(call_id, fetch_contact=False)

    def hangup(
        self,
        call_id: int,
        at: float | None = None,
        missed_call_reason: str | None = None,
        voicemail: bool = False,
    ) -> dict:
        """``call.hungup``: status ``done``, ``duration = ended_at - started_at`` (ringing
        included). An unanswered inbound call gets a ``missed_call_reason`` (by default
        ``agents_did_not_answer`` if it rang on an agent, else ``no_available_agent``)."""
        with self._lock:
            call = self._call(call_id)
            if call["status"] == "done":
                raise BadRequest(f"Call {call_id} is already over.")
            if missed_call_reason is not None and missed_call_reason not in MISSED_CALL_REASONS:
                raise BadRequest(f"Unknown missed_call_reason '{missed_call_reason}'.")
            if call["status"] == "answered" and (missed_call_reason or voicemail):
                raise BadRequest("An answered call has no missed_call_reason nor voicemail.")
            if voicemail and call["direction"] != "inbound":
                raise BadRequest("Only inbound calls take voicemails.")
            if call["status"] == "initial" and call["direction"] == "inbound":
                missed_call_reason = missed_call_reason or (
                    "agents_did_not_answer" if "user" in call else "no_available_agent"
                )
            ended_at = self._at(at)
            if ended_at < (call["answered_at"] or call["started_at"]):
                raise BadRequest("A call can't end before it started or was answered.")
            call.update(
                status="done",
                ended_at=ended_at,
                duration=ended_at - call["started_at"],
                missed_call_reason=missed_call_reason,
            )
            self._notes[call_id].voicemail = voicemail
            self._emit_call("call.hungup", call_id)
            return self._rest_call(call_id, fetch_contact=False)

    def end(self, call_id: int) -> dict:
        """``call.ended`` once the call data is complete (Aircall: ~30 s after hang-up; the
        caller chooses when), with the recording of an answered call; then
        ``call.voicemail_left`` if the caller left one."""
        with self._lock:
            call = self._call(call_id)
            notes = self._notes[call_id]
            if call["status"] != "done" or notes.ended:
                raise BadRequest(f"Call {call_id} must be hung up, and ended only once.")
            notes.ended = True
            if call["answered_at"] is not None:
                call["recording"] = f"{_MEDIA_HOST}/{call['sid']}/recording.mp3?X-Amz-Expires=600"
                call["asset"] = f"https://assets.aircall.io/calls/{call_id}/recording"
            if notes.voicemail:
                call["voicemail"] = f"{_MEDIA_HOST}/{call['sid']}/voicemail.mp3?X-Amz-Expires=600"
                call["asset"] = f"https://assets.aircall.io/calls/{call_id}/voicemail"
            self._emit_call("call.ended", call_id)
            if notes.voicemail:
                self._emit_call("call.voicemail_left", call_id)
            return self._rest_call(call_id, fetch_contact=False)

    def tag(self, call_id: int, tag_name: str, user_id: int | None = None) -> dict:
        """An agent (or, without ``user_id``, the system) picks an existing tag by name."""
        with self._lock:
            tag = self._tag_named(tag_name)
            if tag is None:
                raise BadRequest(f"Tag '{tag_name}' does not exist.")
            return self._tag_call(call_id, [tag], user_id)

    def tag_by_ids(self, call_id: int, tag_ids: object) -> dict:
        """``POST /v1/calls/{id}/tags``. The ids are added to the call's tags (the docs do not
        say add or replace; adding loses nothing the agent chose)."""
        if (
            not isinstance(tag_ids, list)
            or not tag_ids
            or not all(isinstance(t, int) and not isinstance(t, bool) for t in tag_ids)
        ):
            raise BadRequest("'tags' must be a non-empty list of tag ids.")
        with self._lock:
            self._call(call_id)
            missing = [t for t in tag_ids if t not in self.tags]
            if missing:
                raise BadRequest(f"Tags not found: {missing}.")
            return self._tag_call(call_id, [self.tags[t] for t in tag_ids], None)

    def _tag_call(self, call_id: int, tags: Iterable[dict], user_id: int | None) -> dict:
        call = self._call(call_id)
        tagged_by = self._user_short(user_id) if user_id is not None else {}
        present = {t["id"] for t in call["tags"]}
        added = False
        for tag in tags:
            if tag["id"] not in present:
                present.add(tag["id"])
                call["tags"].append(
                    {
                        "id": tag["id"],
                        "name": tag["name"],
                        "tagged_by": copy.deepcopy(tagged_by),
                        "tagged_at": self._now(),
                    }
                )
                added = True
        if added:
            self._emit_call("call.tagged", call_id)
        return self._rest_call(call_id, fetch_contact=False)

    def comment(self, call_id: int, content: str, user_id: int | None = None) -> dict:
        """``call.commented``; at most 5 per call, emojis stripped, ``posted_by`` null when
        posted through the API (no ``user_id``)."""
        if not isinstance(content, str) or not _EMOJI.sub("", content).strip():
            raise BadRequest("'content' can't be blank.")
        with self._lock:
            call = self._call(call_id)
            if len(call["comments"]) >= MAX_COMMENTS:
                raise BadRequest("Maximum of 5 notes can be added to a Call.")
            call["comments"].append(
                {
                    "id": self._next_id("comment"),
                    "content": _EMOJI.sub("", content),
                    "posted_at": self._now(),
                    "posted_by": self._user_short(user_id) if user_id is not None else None,
                }
            )
            self._emit_call("call.commented", call_id)
            return self._rest_call(call_id, fetch_contact=False)

    def summary(self, call_id: int, content: str) -> dict:
        """``summary.created`` (AI Assist), only for a call that is over. The envelope's
        ``resource`` is ``summary``: the per-kind reading of an unconfirmed detail."""
        with self._lock:
            call = self._call(call_id)
            if call["status"] != "done":
                raise BadRequest("Summaries are generated once the call is over.")
            summary = {
                "id": self._next_id("summary"),
                "call_id": call_id,
                "created_at": iso(self.clock()).split(".")[0] + "Z",
                "content": content,
            }
            self._emit("summary.created", "summary", copy.deepcopy(summary))
            return summary

    def add_insight_card(self, call_id: int, contents: object) -> dict:
        """``POST /v1/calls/{id}/insight_cards``: only while the call is ``initial`` or
        ``answered``."""
        with self._lock:
            call = self._call(call_id)
            _check_card(contents, self.users)
            if call["status"] == "done":
                raise BadRequest("Insight cards can only be sent to ongoing calls.")
            card = {
                "call_id": call_id,
                "contents": copy.deepcopy(contents),
                "received_at": self.clock(),
            }
            self.insight_cards.append(card)
            return copy.deepcopy(card)

    # -- reading ------------------------------------------------------------------------------

    def call(self, call_id: int, *, fetch_contact: bool = False) -> dict:
        with self._lock:
            self._call(call_id)
            return self._rest_call(call_id, fetch_contact=fetch_contact)

    def list_calls(
        self,
        *,
        fetch_contact: bool = False,
        direction: str | None = None,
        user_id: int | None = None,
        phone_number: str | None = None,
        tag_ids: Iterable[int] = (),
        started_from: int | None = None,
        started_to: int | None = None,
    ) -> list[dict]:
        """Calls ordered by ``started_at`` (then id), filtered on every criterion given; the
        phone number matches the external party in E.164, ``started_from``/``started_to``
        bound ``started_at`` inclusively."""
        wanted_phone = e164(phone_number) if phone_number is not None else None
        wanted_tags = set(tag_ids)
        with self._lock:
            found = []
            for call_id, call in self.calls.items():
                if direction is not None and call["direction"] != direction:
                    continue
                if started_from is not None and call["started_at"] < started_from:
                    continue
                if started_to is not None and call["started_at"] > started_to:
                    continue
                if user_id is not None and (call.get("user") or {}).get("id") != user_id:
                    continue
                if phone_number is not None and (
                    wanted_phone is None or self._notes[call_id].external != wanted_phone
                ):
                    continue
                if not wanted_tags <= {t["id"] for t in call["tags"]}:
                    continue
                found.append(self._rest_call(call_id, fetch_contact=fetch_contact))
            found.sort(key=lambda c: (c["started_at"], c["id"]))
            return found

    def _rest_call(self, call_id: int, *, fetch_contact: bool) -> dict:
        call = self.calls[call_id]
        contact = self._contact_for_phone(self._notes[call_id].external) if fetch_contact else None
        rendered = {key: call[key] for key in _CALL_KEYS if key in call}
        rendered["contact"] = contact
        return copy.deepcopy(rendered)

    def _emit_call(self, event: str, call_id: int) -> None:
        self._emit(event, "call", self._webhook_call(call_id))

    def _webhook_call(self, call_id: int) -> dict:
        call = self.calls[call_id]
        external = self._notes[call_id].external
        contact = self._contact_for_phone(external)
        data: dict[str, Any] = {}
        for key in _CALL_KEYS:
            if key == "sid":
                data["call_uuid"] = call["sid"]
            elif key == "contact":
                if contact is not None:
                    data["contact"] = contact
            elif key in call:
                data[key] = call[key]
        party: dict[str, Any] = {"type": "external", "phone_number": call["raw_digits"]}
        if contact is not None:
            name = " ".join(filter(None, (contact["first_name"], contact["last_name"])))
            party = {
                "type": "contact",
                "id": contact["id"],
                "name": name,
                "phone_number": call["raw_digits"],
            }
        data["participants"] = [party]
        if call.get("user"):
            user = call["user"]
            data["participants"].append({"type": "user", "id": user["id"], "name": user["name"]})
        return copy.deepcopy(data)


def _check_card(contents: object, users: dict[int, dict]) -> None:
    """Block types and fields as Aircall documents them; anything else is refused, and at
    most one ``title`` (the strict reading of an undocumented limit)."""
    if not isinstance(contents, list) or not contents:
        raise BadRequest("'contents' must be a non-empty list of blocks.")
    titles = 0
    for block in contents:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _CARD_FIELDS:
            raise BadRequest(f"Unknown insight card block type: {kind!r}.")
        required, optional = _CARD_FIELDS[kind]
        fields = set(block) - {"type"}
        if not required <= fields or not fields <= required | optional:
            raise BadRequest(
                f"A '{kind}' block needs {sorted(required)} and may have {sorted(optional)}."
            )
        for key in fields - {"user_id"}:
            if not isinstance(block[key], str) or not block[key].strip():
                raise BadRequest(f"'{key}' of a '{kind}' block must be a non-empty string.")
        if "link" in fields and urlsplit(block["link"]).scheme not in ("http", "https"):
            raise BadRequest(f"'{block['link']}' is not an http(s) link.")
        if kind == "user" and block["user_id"] not in users:
            raise BadRequest(f"User {block['user_id']} not found.")
        titles += kind == "title"
    if titles > 1:
        raise BadRequest("An insight card has at most one 'title' block.")
