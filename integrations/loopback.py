"""Run an ASGI app on a real loopback socket in a background thread; cut a TCP link on demand.

Tests, the demo and the benchmarks all need real HTTP servers (the emulators and the app);
binding port 0 ourselves means no port races, and waiting on ``server.started`` means no sleeps.
The fault tests and the chaos bench also cut a process's database link (``tcp_proxy``).
"""

from __future__ import annotations

import contextlib
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


class TcpProxy:
    """A loopback TCP proxy whose link can be cut: a database outage, on demand, for one client.

    While cut, every open connection is closed and new ones are closed as soon as they arrive,
    as when the database restarts; ``restore`` lets connections through again.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self.refused = 0  # connections closed on arrival while cut
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                with self._lock:
                    self.refused += 1
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                self._drop(end)

    def _drop(self, end: socket.socket) -> None:
        with self._lock:
            self._open.discard(end)
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            ends = list(self._open)
        for end in ends:
            self._drop(end)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()


@contextmanager
def tcp_proxy(upstream: tuple[str, int]) -> Iterator[TcpProxy]:
    proxy = TcpProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
