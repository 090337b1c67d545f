"""Child process: serve one app under uvicorn on a socket the parent bound (``--fd``).

    python bench/_server.py receiver --fd 5    # our app, web tier only (worker=False)
    python bench/_server.py app --fd 5         # our app with its in-process worker
    python bench/_server.py ceiling --fd 5     # bare Starlette: parse the JSON, answer 200
    python bench/_server.py ceiling --fd 5 --stack h11   # on h11 + asyncio instead

Both apps run with the uvicorn options of ``callbridge serve``, one process, so the comparison
is fair. Our app reads its settings from the environment, as in production.
"""

from __future__ import annotations

import argparse
import json
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# uvicorn's HTTP parser and event loop: what `callbridge serve` picks (uvicorn[standard]), and
# the pure-Python pair for comparison.
STACKS = {"httptools": ("httptools", "uvloop"), "h11": ("h11", "asyncio")}


async def _ceiling_webhook(request: Request) -> Response:
    json.loads(await request.body())
    return JSONResponse({"ok": True})


async def _ceiling_health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def ceiling_app() -> Starlette:
    """The upper bound: same framework and server, no token check, no storage."""
    return Starlette(
        routes=[
            Route("/healthz", _ceiling_health),
            Route("/webhooks/aircall", _ceiling_webhook, methods=["POST"]),
        ]
    )


def callbridge_app(worker: bool) -> Starlette:
    from integrations.settings import Settings
    from web.app import create_app

    return create_app(Settings(_env_file=None), worker=worker)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["receiver", "app", "ceiling"])
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--stack", choices=sorted(STACKS), default="httptools")
    args = parser.parse_args()
    app = ceiling_app() if args.kind == "ceiling" else callbridge_app(worker=args.kind == "app")
    sock = socket.socket(fileno=args.fd)
    http, loop = STACKS[args.stack]
    config = uvicorn.Config(  # as web/cli.py's serve, plus the socket's backlog and the stack
        app,
        http=http,
        loop=loop,
        log_level="warning",
        ws="websockets-sansio",
        proxy_headers=True,
        server_header=False,
        backlog=2048,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
