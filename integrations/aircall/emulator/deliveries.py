"""Webhook deliveries as the company records them: who gets which event, and how it went.

The company only queues and books; :class:`~.sender.WebhookSender` does the HTTP. Each
delivery is one envelope for one webhook, logged in ``company.deliveries`` by index.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

#: After disabling a webhook Aircall keeps retrying for 12 h; one success re-enables it.
REENABLE_WINDOW = 12 * 3600


@dataclass
class _Health:
    failures: int = 0  # consecutive failed attempts, any delivery
    disabled_at: float | None = None  # set when failures disabled the webhook


class DeliveryLog:
    """Webhook registry, delivery queue and delivery log of a company.

    ``duplicate_next`` (int) queues each of the next N deliveries twice; ``shuffle`` (bool) lets
    the sender send what is queued in random order. Aircall is at-least-once and unordered.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self.webhooks: dict[str, dict] = {}
        self.deliveries: list[dict] = []
        self.duplicate_next = 0
        self.shuffle = False
        self._health: dict[str, _Health] = {}
        self._pending: list[int] = []
        self._unfinished = 0
        self._listeners: list[Callable[[], None]] = []

    def _register_webhook(self, webhook: dict) -> None:
        self.webhooks[webhook["webhook_id"]] = webhook
        self._health[webhook["webhook_id"]] = _Health()

    def _set_active(self, webhook_id: str, active: bool) -> None:
        """An explicit (de)activation clears the failure count and the re-enable window."""
        self.webhooks[webhook_id]["active"] = active
        self._health[webhook_id] = _Health()

    def _emit(self, event: str, resource: str, data: dict) -> None:
        """Queue ``event`` for every active webhook subscribed to it. Caller holds the lock
        and passes a ``data`` snapshot nobody mutates afterwards."""
        timestamp = int(self.clock())
        for webhook in self.webhooks.values():
            if not webhook["active"] or event not in webhook["events"]:
                continue
            envelope = {
                "resource": resource,
                "event": event,
                "timestamp": timestamp,
                "token": webhook["token"],
                "data": data,
            }
            index = self._enqueue(webhook["webhook_id"], envelope, duplicate_of=None)
            if self.duplicate_next > 0:
                self.duplicate_next -= 1
                self._enqueue(webhook["webhook_id"], envelope, duplicate_of=index)
        self._notify()

    def _enqueue(self, webhook_id: str, envelope: dict, duplicate_of: int | None) -> int:
        data = envelope["data"]
        index = len(self.deliveries)
        self.deliveries.append(
            {
                "index": index,
                "event": envelope["event"],
                "call_id": data.get("call_id", data.get("id"))
                if envelope["resource"] in ("call", "summary")
                else None,
                "resource_id": data.get("id"),
                "webhook_id": webhook_id,
                "attempts": 0,
                "last_status": None,
                "last_error": None,
                "delivered": False,
                "given_up": False,
                "duplicate_of": duplicate_of,
                "envelope": envelope,
            }
        )
        self._pending.append(index)
        self._unfinished += 1
        return index

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def redeliver(self, delivery_index: int) -> int:
        """Send an earlier delivery's envelope again, as a new delivery; returns its index."""
        with self._lock:
            original = self.deliveries[delivery_index]
            if original["webhook_id"] not in self.webhooks:
                raise LookupError(f"webhook {original['webhook_id']} was deleted")
            index = self._enqueue(
                original["webhook_id"], original["envelope"], duplicate_of=delivery_index
            )
            self._notify()
            return index

    # -- used by the sender -------------------------------------------------------------------

    def _listen(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (under the lock, so it must not block) whenever work is queued."""
        with self._lock:
            self._listeners.append(listener)

    def _unlisten(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def _take_pending(self) -> list[int]:
        with self._lock:
            taken, self._pending = self._pending, []
            return taken

    def _delivery_target(self, index: int) -> tuple[str, dict] | None:
        """URL and envelope of the next attempt; None (and the delivery given up) when the
        webhook is gone or was switched off by hand."""
        with self._lock:
            delivery = self.deliveries[index]
            webhook = self.webhooks.get(delivery["webhook_id"])
            health = self._health.get(delivery["webhook_id"])
            if webhook is None or (not webhook["active"] and health.disabled_at is None):
                self._give_up(delivery)
                return None
            return webhook["url"], delivery["envelope"]

    def _record_attempt(
        self,
        index: int,
        status: int | None,
        error: str | None,
        *,
        max_attempts: int,
        disable_after: int,
    ) -> bool:
        """Book one attempt; True when the delivery should be tried again."""
        with self._lock:
            now = self.clock()
            delivery = self.deliveries[index]
            delivery["attempts"] += 1
            delivery["last_status"] = status
            delivery["last_error"] = error
            webhook = self.webhooks.get(delivery["webhook_id"])
            if webhook is None:
                self._give_up(delivery)
                return False
            health = self._health[delivery["webhook_id"]]
            if status is not None and 200 <= status < 300:
                delivery["delivered"] = True
                health.failures = 0
                if not webhook["active"] and health.disabled_at is not None:
                    webhook["active"] = True
                    health.disabled_at = None
                self._finish()
                return False
            health.failures += 1
            if webhook["active"] and health.failures >= disable_after:
                webhook["active"] = False
                health.disabled_at = now
            window_over = (
                not webhook["active"]
                and health.disabled_at is not None
                and now - health.disabled_at > REENABLE_WINDOW
            )
            if delivery["attempts"] >= max_attempts or window_over:
                self._give_up(delivery)
                return False
            return True

    def _give_up(self, delivery: dict) -> None:
        delivery["given_up"] = True
        self._finish()

    def _finish(self) -> None:
        self._unfinished -= 1
        self._settled.notify_all()

    def _wait_settled(self, timeout: float) -> bool:
        with self._lock:
            return self._settled.wait_for(lambda: self._unfinished == 0, timeout)
