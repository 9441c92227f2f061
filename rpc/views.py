"""The replica worker's JSON-RPC endpoint: ``POST /`` on its Faust web port, and WebSockets on ``GET /``.

The service reads the replica's LevelDB through the read-only view and answers a
not-ready error until the replica is ready; a ``GET /`` that asks for a WebSocket
is upgraded (``rpc.subscriptions``) on the same port.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import faust
from aiohttp import web as aiohttp_web

from rpc.cors import BrowserAccess
from rpc.frontdoor import FrontDoorRunner
from rpc.http import make_handler
from rpc.service import RpcService
from rpc.subscriptions import Hub


def register(app: faust.App, service: RpcService, hub: Hub, access: BrowserAccess = BrowserAccess()) -> None:
    """Serve ``service`` on ``POST /`` and ``hub``'s WebSockets on ``GET /`` of the worker's web port,
    to the browser origins ``access`` allows."""
    web_app = app.web.web_app  # type: ignore[attr-defined]
    # The route serves the JSON-RPC posts that the port's front door (``rpc.frontdoor``) hands
    # to the application (browser requests, chunked or large bodies); as a raw aiohttp route,
    # not a Faust View, it skips Faust's request and response wrappers.
    web_app.router.add_post("/", make_handler(service))
    app.web._runner = FrontDoorRunner(web_app, service, access, access_log=None)  # type: ignore[attr-defined]

    @aiohttp_web.middleware
    async def websocket_upgrade(request: aiohttp_web.Request,
                                handler: Callable[[aiohttp_web.Request], Awaitable[Any]]) -> Any:
        """``GET /`` asking for a WebSocket becomes a JSON-RPC WebSocket (eth_subscribe); anything else
        goes on to its route (Faust's own ``GET /`` index among them)."""
        if (request.method == "GET" and request.path == "/"
                and request.headers.get("Upgrade", "").lower() == "websocket"):
            return await hub.serve(request, service.handle_body, service.backend.check_ready)
        return await handler(request)

    # A middleware wraps every route, so the upgrade shares the JSON-RPC path and port without
    # replacing Faust's GET / index; the browser rules (CORS, WebSocket origins) run first.
    web_app.middlewares.append(access.middleware("/"))
    web_app.middlewares.append(websocket_upgrade)

    async def feed_subscriptions() -> None:
        await hub.run()

    app.task(feed_subscriptions)
