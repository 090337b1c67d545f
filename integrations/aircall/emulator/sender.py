"""Sends queued webhook deliveries over HTTP the way Aircall does.

POST with a JSON body and Aircall's headers, 5 s timeout, any 2xx is success. A failure is
retried with exponential backoff (``base_delay`` doubling up to ``max_delay``, by default 900
times ``base_delay``: about 12 h over 50 attempts at the default 1 s) until ``max_attempts``; after
``disable_after`` consecutive failures the webhook is switched off, and one later success
switches it back on. The contract reads 50 consecutive failures in one place and 10 failed
requests in another: the emulator takes the stricter 10. Deliveries to one webhook leave in
queue order, but a retried one goes whenever its backoff ends, so receivers see what Aircall
promises: at least once, unordered.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import ssl
import threading
from concurrent.futures import Future

import httpx

from .company import Company

USER_AGENT = "axios/1.7.7"


class WebhookSender:
    """Runs deliveries in a background thread with its own event loop, or as a task on
    ``loop`` when given one. ``start()``/``stop()``, or use it as a context manager."""

    def __init__(
        self,
        company: Company,
        *,
        base_delay: float = 1.0,
        max_delay: float | None = None,
        max_attempts: int = 50,
        disable_after: int = 10,
        timeout: float = 5.0,
        verify: bool | ssl.SSLContext = True,
        shuffle_window: float = 0.2,
        seed: int | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.company = company
        self.base_delay = base_delay
        self.max_delay = base_delay * 900 if max_delay is None else max_delay
        self.max_attempts = max_attempts
        self.disable_after = disable_after
        self.timeout = timeout
        self.verify = verify
        self.shuffle_window = shuffle_window
        self._rng = random.Random(seed)
        self._given_loop = loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._future: Future | None = None

    def start(self) -> None:
        """Begin sending; returns once the sender listens for new deliveries."""
        self._stopping = False
        self._ready.clear()
        if self._given_loop is not None:
            self._future = asyncio.run_coroutine_threadsafe(self._run(), self._given_loop)
            if not _on_loop(self._given_loop):  # on the loop itself, waiting would deadlock
                self._ready.wait(10)
            return
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._run(),), name="aircall-webhooks", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("webhook sender did not start")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sending; deliveries still queued or waiting for a retry stay unfinished."""
        self._stopping = True
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        elif self._future is not None and not _on_loop(self._given_loop):
            self._future.result(timeout)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued delivery is delivered or given up."""
        if not self.company._wait_settled(timeout):
            raise TimeoutError(f"webhook deliveries still unfinished after {timeout}s")

    def __enter__(self) -> WebhookSender:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        return min(self.base_delay * 2 ** (attempts - 1), self.max_delay)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()

        def listener() -> None:
            self._loop.call_soon_threadsafe(wake.set)

        lanes: dict[str, asyncio.Queue[int]] = {}
        tasks: set[asyncio.Task] = set()
        self.company._listen(listener)
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout, verify=self.verify, trust_env=False
            ) as client:
                self._ready.set()
                while not self._stopping:
                    if self.company.shuffle:
                        await asyncio.sleep(self.shuffle_window)  # gather a batch to reorder
                    batch = self.company._take_pending()
                    if not batch:
                        await wake.wait()
                        wake.clear()
                        continue
                    if self.company.shuffle:
                        self._rng.shuffle(batch)
                    for index in batch:
                        webhook_id = self.company.deliveries[index]["webhook_id"]
                        if webhook_id not in lanes:
                            lanes[webhook_id] = asyncio.Queue()
                            self._spawn(tasks, self._lane(client, lanes[webhook_id], tasks))
                        lanes[webhook_id].put_nowait(index)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.company._unlisten(listener)

    @staticmethod
    def _spawn(tasks: set[asyncio.Task], coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _lane(
        self, client: httpx.AsyncClient, queue: asyncio.Queue[int], tasks: set[asyncio.Task]
    ) -> None:
        """First attempts for one webhook, one at a time in queue order."""
        while True:
            index = await queue.get()
            if await self._attempt(client, index):
                self._spawn(tasks, self._retry(client, index))

    async def _retry(self, client: httpx.AsyncClient, index: int) -> None:
        while True:
            await asyncio.sleep(self.backoff(self.company.deliveries[index]["attempts"]))
            if not await self._attempt(client, index):
                return

    async def _attempt(self, client: httpx.AsyncClient, index: int) -> bool:
        """One POST; True when the delivery is to be tried again."""
        target = self.company._delivery_target(index)
        if target is None:
            return False
        url, envelope = target
        try:
            response = await client.post(
                url, content=json.dumps(envelope).encode(), headers=_headers()
            )
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        else:
            status, error = response.status_code, None
        return self.company._record_attempt(
            index,
            status,
            error,
            max_attempts=self.max_attempts,
            disable_after=self.disable_after,
        )


def _headers() -> dict[str, str]:
    """Headers of a live Aircall delivery; the Datadog ones are tracing noise, no credential."""
    return {
        "content-type": "application/json",
        "accept": "application/json, text/plain, */*",
        "user-agent": USER_AGENT,
        "aircall-origin": "webhooks",
        "x-datadog-trace-id": str(secrets.randbits(63)),
        "x-datadog-parent-id": str(secrets.randbits(63)),
        "x-datadog-sampling-priority": "1",
        "tracestate": f"dd=s:1;t.tid:{secrets.token_hex(8)}",
    }


def _on_loop(loop: asyncio.AbstractEventLoop | None) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
