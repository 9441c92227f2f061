"""The replica worker's JSON-RPC endpoint: ``POST /`` on its Faust web port, and WebSockets on ``GET /``.

The service reads the replica's LevelDB through the read-only view and answers a
not-ready error until the replica is ready; a ``GET /`` that asks for a WebSocket
is upgraded (``rpc.subscriptions``) on the same port.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import faust
from aiohttp import hdrs
from aiohttp import web as aiohttp_web
from aiohttp.web_server import Server

from rpc.cors import BrowserAccess
from rpc.http import Handler, make_handler
from rpc.service import RpcService
from rpc.subscriptions import Hub


def register(app: faust.App, service: RpcService, hub: Hub, access: BrowserAccess = BrowserAccess()) -> None:
    """Serve ``service`` on ``POST /`` and ``hub``'s WebSockets on ``GET /`` of the worker's web port,
    to the browser origins ``access`` allows."""
    web_app = app.web.web_app  # type: ignore[attr-defined]
    handle_http = make_handler(service)
    # The route serves what the runner's front door leaves to the application (browser
    # requests, a path with a query); as a raw aiohttp route, not a Faust View, it skips
    # Faust's request and response wrappers.
    web_app.router.add_post("/", handle_http)
    app.web._runner = RpcFirstRunner(web_app, handle_http, access_log=None)  # type: ignore[attr-defined]

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


ServerHandler = Callable[[aiohttp_web.BaseRequest], Awaitable[aiohttp_web.StreamResponse]]


def rpc_first(application: ServerHandler, rpc: Handler, path: str = "/") -> ServerHandler:
    """A server handler answering plain JSON-RPC posts to ``path`` itself and passing the rest
    to ``application``.

    A JSON-RPC post needs none of the application's machinery: routing, the middlewares
    (the browser rules act only on requests with an ``Origin``, the WebSocket upgrade only
    on GET) and the response signals. Skipping them is most of what aiohttp's low-level
    server saves over an application: 59-62 us of CPU per request against 87-110 us for
    the same constant answer, measured side by side on this project's 2-core machine.
    """

    async def front(request: aiohttp_web.BaseRequest) -> aiohttp_web.StreamResponse:
        if request.method == hdrs.METH_POST and request.raw_path == path and hdrs.ORIGIN not in request.headers:
            return await rpc(request)  # type: ignore[arg-type]  # a web.Request: the runner's factory
        return await application(request)

    return front


class RpcFirstRunner(aiohttp_web.AppRunner):
    """Faust's web runner with :func:`rpc_first` as its server's handler.

    Faust serves its web application through an ``AppRunner``; this one builds the same
    server and puts the JSON-RPC in front of the application, so the replica keeps one port
    for the JSON-RPC, its WebSockets, the health checks, the status page and Faust's pages.
    """

    def __init__(self, web_app: aiohttp_web.Application, rpc: Handler, **kwargs: Any) -> None:
        super().__init__(web_app, **kwargs)
        self.rpc = rpc

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.request_handler = rpc_first(server.request_handler, self.rpc)
        return server
