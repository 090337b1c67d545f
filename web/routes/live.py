"""``/live``: the dashboard's WebSocket. A snapshot on (re)connect, then each change.

Messages are HTML fragments swapped out of band by htmx's ws extension, one kind per message:
the calls table (snapshot), a row (``hx-swap-oob`` replaces it), a new row (inside a
``<tbody hx-swap-oob="afterbegin:#live-calls">``), or the Salesforce context card.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine
from starlette.templating import Jinja2Templates
from starlette.websockets import WebSocket, WebSocketDisconnect

from integrations.sync.intake.live import Broadcaster
from integrations.sync.review import browse
from web import security

log = logging.getLogger(__name__)

SNAPSHOT_SIZE = 50
OUTBOX_SIZE = 500  # a dashboard this far behind is closed; it reconnects to a fresh snapshot
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013  # htmx's ws extension reconnects after this one


def on_the_line(calls: list[browse.CallView]) -> list[browse.CallView]:
    """The agent's live calls for the card: answered before ringing, each newest first."""
    return sorted(calls, key=lambda call: call.state != "in progress")


@dataclass
class Change:
    """One call, rendered once for every dashboard allowed to see it."""

    call: browse.CallView
    row: str  # replaces the row
    new_row: str  # adds it on top
    card: str  # the context card, for the call's own agent


@dataclass(eq=False)
class Viewer:
    """One open dashboard: who is looking, and what its page holds."""

    email: str
    manager: bool
    outbox: asyncio.Queue[Change | None] = field(default_factory=lambda: asyncio.Queue(OUTBOX_SIZE))
    shown: set[int] = field(default_factory=set)
    card_call: int | None = None
    # The agent's other live calls, newest change last: the next to take the card when its call
    # ends. A call never takes the card from another that is still live, so what the agent is
    # doing there (a note, its confirmation) stays in sight.
    waiting: dict[int, str] = field(default_factory=dict)
    behind: bool = False  # its outbox overflowed: close it, the page reconnects

    def sees(self, call: browse.CallView) -> bool:
        return self.manager or call.agent_email == self.email

    def offer(self, item: Change | None) -> bool:
        """Queue a change; False when this dashboard is too far behind to keep."""
        if item is not None and not self.sees(item.call):
            return True
        try:
            self.outbox.put_nowait(item)
        except asyncio.QueueFull:
            self.behind = True
        return not self.behind


class Hub:
    """This process's dashboards, fed by the broadcaster."""

    def __init__(
        self,
        broadcaster: Broadcaster,
        engine: Engine,
        templates: Jinja2Templates,
        record_base: str,
    ) -> None:
        self.broadcaster = broadcaster
        self.engine = engine
        self.templates = templates
        self.record_base = record_base
        self.viewers: set[Viewer] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def render(self, name: str, **context: object) -> str:
        return self.templates.get_template(name).render(**context)

    def card(self, call: browse.CallView | None) -> str:
        return self.render("partials/context_card.html", call=call, oob=True)

    def table(self, calls: list[browse.CallView]) -> str:
        return self.render("partials/live_calls.html", calls=calls, oob=True)

    async def _run(self) -> None:
        with self.broadcaster.subscribe() as changes:
            while True:
                ids = {await changes.get()}
                while not changes.empty():  # a burst becomes one load per call
                    ids.add(changes.get_nowait())
                if None in ids:
                    ids.discard(None)
                    self._offer(None)
                if ids:
                    await self._fan_out(sorted(i for i in ids if i is not None))

    def _offer(self, item: Change | None) -> None:
        for viewer in list(self.viewers):
            if not viewer.offer(item):
                log.warning("live.dashboard_behind", extra={"user": viewer.email})
                self.viewers.discard(viewer)

    async def _fan_out(self, call_ids: list[int]) -> None:
        if not self.viewers:
            return  # nobody is watching: no need to load and render
        calls = await asyncio.to_thread(browse.call_views, self.engine, call_ids, self.record_base)
        for call in calls:
            row = self.render("partials/call_row.html", call=call, oob=True)
            new_row = self.render("partials/new_call_row.html", call=call)
            self._offer(Change(call, row, new_row, self.card(call)))

    async def snapshot(self, viewer: Viewer) -> list[str]:
        """The messages that bring a (re)connected dashboard up to date."""
        calls = await asyncio.to_thread(
            browse.recent_calls,
            self.engine,
            self.record_base,
            agent=None if viewer.manager else viewer.email,
            limit=SNAPSHOT_SIZE,
        )
        viewer.shown = {call.id for call in calls}
        own = [c for c in calls if c.active and c.agent_email == viewer.email]
        # A reconnect keeps the card on its call while that call is live; else the call on
        # the line comes before one ringing.
        kept = [c for c in own if c.id == viewer.card_call] or on_the_line(own)[:1]
        viewer.card_call = kept[0].id if kept else None
        viewer.waiting = {c.id: self.card(c) for c in reversed(own) if c.id != viewer.card_call}
        return [self.table(calls), self.card(kept[0] if kept else None)]

    def messages(self, viewer: Viewer, item: Change) -> list[str]:
        """What one change means for this dashboard, decided when it is sent."""
        call = item.call
        out = [item.row if call.id in viewer.shown else item.new_row]
        viewer.shown.add(call.id)
        if call.agent_email != viewer.email:
            return out
        viewer.waiting.pop(call.id, None)
        if call.id == viewer.card_call and not call.active:
            # The card's call ended: the newest other live call takes the card, if any.
            viewer.card_call = next(reversed(viewer.waiting), None)
            nxt = viewer.waiting.pop(viewer.card_call) if viewer.card_call is not None else None
            out.append(nxt or self.card(None))
        elif call.active and viewer.card_call in (None, call.id):
            out.append(item.card)
            viewer.card_call = call.id
        elif call.active:
            viewer.waiting[call.id] = item.card
        return out


async def live(websocket: WebSocket) -> None:
    """Signed-in users only, from our own pages only; then snapshot and changes."""
    hub: Hub = websocket.app.state.hub
    user = await security.current_user(websocket)
    if user is None or not security.same_origin(websocket):
        await websocket.close(code=POLICY_VIOLATION)
        return
    await websocket.accept()
    viewer = Viewer(email=user.email, manager=user.is_manager)
    hub.viewers.add(viewer)  # before the snapshot: changes meanwhile wait in the outbox
    try:
        for message in await hub.snapshot(viewer):
            await websocket.send_text(message)
        sender = asyncio.create_task(_send(hub, viewer, websocket))
        try:
            while True:  # the page sends nothing we act on; this notices it leaving
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    finally:
        hub.viewers.discard(viewer)


async def _send(hub: Hub, viewer: Viewer, websocket: WebSocket) -> None:
    while True:
        item = await viewer.outbox.get()
        if viewer.behind:
            await websocket.close(code=TRY_AGAIN_LATER)
            return
        if item is None:
            for message in await hub.snapshot(viewer):
                await websocket.send_text(message)
            continue
        for message in hub.messages(viewer, item):
            await websocket.send_text(message)
