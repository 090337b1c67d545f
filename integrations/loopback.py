"""Run an ASGI app on a real loopback socket in a background thread.

Tests, the demo and the benchmarks all need real HTTP servers (the emulators and the app);
binding port 0 ourselves means no port races, and waiting on ``server.started`` means no sleeps.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp


def wait_for(
    condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.01
) -> object:
    """Poll ``condition`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass
class Running:
    """A server started by :func:`serve`: its base URL and the uvicorn server itself."""

    url: str
    host: str
    port: int
    server: uvicorn.Server


@contextmanager
def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    url_host: str | None = None,
) -> Iterator[Running]:
    """Serve ``app`` on ``host:port`` (0 picks a free port) until the block exits.

    ``url_host`` is the name put in the returned URL; TLS servers use ``localhost`` so that the
    certificate's name matches.
    """
    # IPPROTO_TCP explicitly: asyncio then sets TCP_NODELAY on accepted connections (no
    # Nagle/delayed-ACK stall of ~40 ms per request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    config = uvicorn.Config(
        app,
        log_level="warning",
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        lifespan="auto",
        ws="websockets-sansio",
        backlog=2048,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout=20)
        if not server.started:
            raise RuntimeError("server failed to start")
        bound_port = sock.getsockname()[1]
        scheme = "https" if ssl_certfile else "http"
        yield Running(f"{scheme}://{url_host or host}:{bound_port}", host, bound_port, server)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
