"""Webhook load: Aircall-shaped deliveries, sent from a process other than the server's.

Each request is a real ``call.*`` envelope as the Aircall emulator emits it (created,
ringing_on_agent, answered, tagged, hungup, ended: one call's life in six deliveries) with a
fresh call id every six requests, so nothing is a duplicate. Two generators:

- ``wrk`` (C, when installed): closed loop, N keep-alive connections, as fast as it goes.
- this file run as a script: plain asyncio streams over keep-alive HTTP/1.1, closed loop, or
  open loop at a fixed rate. In the open loop request ``i`` is due at ``start + i / rate`` and its
  latency counts from then, so a server that falls behind shows it (no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

MARK = "__CALL_ID__"
LIFE = 6  # deliveries per call in the templates


def templates(token: str) -> list[str]:
    """One call's deliveries as the Aircall emulator sends them, its id replaced by ``MARK``."""
    from integrations.aircall.emulator import Company  # here: the generator process needs none

    company = Company()
    agent = company.add_user("Jane Agent", "jane.agent@example.com")
    line = company.add_number("Support line", "+1 415 555 0199")
    company.add_webhook("http://127.0.0.1:9/webhooks/aircall", token=token)
    call = company.start_call(
        direction="inbound", external="+1 212 555 0142", number_id=line["id"], user_id=agent["id"]
    )
    company.answer(call["id"], user_id=agent["id"])
    company.tag(call["id"], company.list_tags()[0]["name"], user_id=agent["id"])
    company.hangup(call["id"])
    company.end(call["id"])
    envelopes = [json.dumps(d["envelope"]) for d in company.deliveries]
    assert len(envelopes) == LIFE, [d["event"] for d in company.deliveries]
    return [e.replace(str(call["id"]), MARK) for e in envelopes]


@dataclass
class Result:
    """One load run. Latencies in seconds, of the requests answered (any status)."""

    elapsed: float  # first request to last answer
    latencies: list[float]
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0  # connection errors and timeouts
    answered: int = 0
    p50: float = 0.0
    p99: float = 0.0
    sent_late: float = 0.0  # open loop: how far behind schedule the last request went out

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


# -- the parent's side ----------------------------------------------------------------------


def has_wrk() -> bool:
    return shutil.which("wrk") is not None


def closed_loop(
    url: str, bodies: list[str], *, first_id: int, connections: int, duration: float, tool: str
) -> Result:
    """As many requests as ``connections`` keep-alive connections carry in ``duration`` s."""
    if tool == "wrk":
        return _wrk(url, bodies, first_id, connections, duration)
    return _python(url, bodies, first_id, connections, duration, rate=0.0)


def open_loop(
    url: str, bodies: list[str], *, first_id: int, connections: int, duration: float, rate: float
) -> Result:
    """``rate`` requests per second for ``duration`` s, whatever the answers take."""
    return _python(url, bodies, first_id, connections, duration, rate=rate)


def _python(
    url: str, bodies: list[str], first_id: int, connections: int, duration: float, rate: float
) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(bodies, f)
        f.flush()
        args = [sys.executable, __file__, url, f.name, "--first-id", str(first_id)]
        args += ["--connections", str(connections), "--duration", str(duration)]
        args += ["--rate", str(rate)]
        out = subprocess.run(args, capture_output=True, check=True, text=True).stdout  # noqa: S603
    data = json.loads(out)
    result = Result(
        elapsed=data["elapsed"],
        latencies=data["latencies"],
        statuses=Counter({int(k): v for k, v in data["statuses"].items()}),
        errors=sum(data["errors"].values()),
        sent_late=data["sent_late"],
    )
    result.answered = len(result.latencies)
    result.p50, result.p99 = _percentile(result.latencies, 50), _percentile(result.latencies, 99)
    return result


_LUA = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "axios/1.7.7"

function request()
  local call = %(first_id)d + math.floor(counter / #bodies)
  local body = string.gsub(bodies[counter %% #bodies + 1], "%(mark)s", tostring(call))
  counter = counter + 1
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n{"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "errors": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def _wrk(url: str, bodies: list[str], first_id: int, connections: int, duration: float) -> Result:
    with tempfile.TemporaryDirectory(prefix="callbridge-wrk-") as tmp:
        lines = Path(tmp, "bodies.jsonl")
        lines.write_text("\n".join(bodies) + "\n")
        script = Path(tmp, "webhooks.lua")
        script.write_text(
            _LUA
            % {
                "bodies": lines,
                "first_id": first_id,
                "mark": MARK,
            }
        )
        command = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s"]
        out = subprocess.run(  # noqa: S603  (our own arguments)
            [*command, "-s", str(script), url],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    result = Result(
        elapsed=data["duration_us"] / 1e6,
        latencies=[],
        statuses=Counter({200: data["requests"] - data["non_2xx"], 0: data["non_2xx"]}),
        errors=data["errors"],
        answered=data["requests"],
        p50=data["p50_us"] / 1e6,
        p99=data["p99_us"] / 1e6,
    )
    return result


# -- the generator process ------------------------------------------------------------------


class _Load:
    def __init__(self, url: str, bodies: list[str], first_id: int) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.bodies = [b.encode() for b in bodies]
        self.first_id = first_id
        self.sent = 0
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()

    def request(self) -> bytes:
        call = str(self.first_id + self.sent // len(self.bodies)).encode()
        body = self.bodies[self.sent % len(self.bodies)].replace(MARK.encode(), call)
        self.sent += 1
        return (
            f"POST {self.path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
            f"content-type: application/json\r\nuser-agent: axios/1.7.7\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)

    async def exchange(
        self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
    ) -> int:
        reader, writer = conn
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return int(head[9:12])

    async def closed_loop(self, connections: int, duration: float) -> float:
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            conn = await self.connect()
            while time.perf_counter() < deadline:
                request = self.request()
                started = time.perf_counter()
                try:
                    status = await self.exchange(conn, request)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    self.errors[type(exc).__name__] += 1
                    conn = await self.connect()
                    continue
                self.latencies.append(time.perf_counter() - started)
                self.statuses[status] += 1
            conn[1].close()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return time.perf_counter() - started

    async def open_loop(self, connections: int, duration: float, rate: float) -> float:
        pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        for conn in await asyncio.gather(*(self.connect() for _ in range(connections))):
            pool.put_nowait(conn)

        async def one(due: float, request: bytes) -> None:
            conn = await pool.get()
            try:
                status = await self.exchange(conn, request)
            except (OSError, asyncio.IncompleteReadError) as exc:
                self.errors[type(exc).__name__] += 1
                conn = await self.connect()
            else:
                self.latencies.append(time.perf_counter() - due)
                self.statuses[status] += 1
            pool.put_nowait(conn)

        start = time.perf_counter() + 0.1
        tasks = []
        for i in range(int(duration * rate)):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due, self.request())))
        self.sent_late = time.perf_counter() - due
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        while not pool.empty():
            pool.get_nowait()[1].close()
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("bodies", help="a JSON list of envelope templates")
    parser.add_argument("--first-id", type=int, required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0)
    args = parser.parse_args()
    load = _Load(args.url, json.loads(Path(args.bodies).read_text()), args.first_id)
    load.sent_late = 0.0
    if args.rate:
        elapsed = asyncio.run(load.open_loop(args.connections, args.duration, args.rate))
    else:
        elapsed = asyncio.run(load.closed_loop(args.connections, args.duration))
    json.dump(
        {
            "elapsed": elapsed,
            "sent_late": load.sent_late,
            "latencies": load.latencies,
            "statuses": load.statuses,
            "errors": load.errors,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
