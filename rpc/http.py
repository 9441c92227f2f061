"""The JSON-RPC endpoint over HTTP: one aiohttp handler around the dispatcher.

``make_handler(service)`` returns ``async def handle_http(request)``; the replica's
Faust worker mounts that coroutine on its web server, and ``make_app`` mounts it on a
bare aiohttp application (the master's RPC, tests). HTTP-level refusals are
geth's (``rpc/http.go``): 413 for a body over the limit, 415 for a content type that
is not JSON, 405 for PUT/DELETE, and an empty 200 for a bare GET health probe.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from aiohttp import web

from rpc.blockwait import HEAD_HEADER, head_number
from rpc.cors import BrowserAccess
from rpc.dispatch import encode_error
from rpc.errors import Overloaded
from rpc.service import RpcService

CONTENT_TYPE = "application/json"
ACCEPTED_CONTENT_TYPES = frozenset({CONTENT_TYPE, "application/json-rpc", "application/jsonrequest"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _plain(status: int, text: str) -> web.Response:
    """geth's ``http.Error``: a text/plain body ending in a newline."""
    return web.Response(status=status, text=text + "\n", content_type="text/plain")


def _refusal(request: web.Request, max_body: int) -> web.Response | None:
    """geth's ``validateRequest``: the HTTP-level checks made before reading the body."""
    if request.method in ("PUT", "DELETE"):
        return _plain(405, "method not allowed")
    length = request.content_length
    if length is not None and length > max_body:
        return _plain(413, f"content length too large ({length}>{max_body})")
    if request.method == "OPTIONS":
        return None
    if request.content_type not in ACCEPTED_CONTENT_TYPES:
        return _plain(415, f"invalid content type, only {CONTENT_TYPE} is supported")
    return None


async def _read_body(request: web.Request, max_body: int) -> bytes | None:
    """The body, or None when it grows past the limit (chunked bodies have no length)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_body:
            return None
        chunks.append(chunk)


RETRY_AFTER_SECONDS = 1


async def overloaded(request: web.Request, error: Overloaded, body: bytes | None = None) -> web.Response:
    """Answer a request shed under load at once: HTTP 503 with Retry-After, and a JSON-RPC
    error (-32005) in the body for clients that read only the body (``body``: the call's own
    error response, which carries its id).

    The connection then stays quiet for the Retry-After period (HTTP/1.1 reads a
    connection's next request only when the handler returns): a client that retries at
    once instead of waiting costs nothing more until then. Without that pause, 256
    clients retrying at once kept the event loop busy answering 503s and the apply
    agent still fell behind.
    """
    response = web.Response(status=503, body=body or encode_error(None, error), content_type=CONTENT_TYPE,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    await response.prepare(request)
    await response.write_eof()
    await asyncio.sleep(RETRY_AFTER_SECONDS)
    return response


def make_handler(service: RpcService) -> Handler:
    """The aiohttp handler serving JSON-RPC for ``service`` (mount it on POST and GET).

    The service's ``admission`` decides which requests are served (``rpc.shedding``);
    the rest are refused at once (``overloaded``). A request of one call that a bound of its
    own refused after admission (``rpc.brokerwait``) is answered the same way (answered
    200 instead, clients retrying at once spun: 5k refusals/s from 64 pollers past the
    bound). A batch keeps 200: its other calls may have been answered.
    """
    max_body = service.limits.max_body_bytes
    admission = service.admission

    async def handle_http(request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and not request.content_length and not request.query_string:
            return web.Response(status=200)  # geth: "dumb empty requests" for health checks
        refusal = _refusal(request, max_body)
        if refusal is not None:
            return refusal
        refused = admission.refusal()
        if refused is not None:
            return await overloaded(request, refused)
        with admission.held() as admitted:
            body = await _read_body(request, max_body)
            if body is None:
                return _plain(413, f"content length too large (>{max_body})")
            response = await service.dispatcher.handle_body(body)
        if admitted.refused is not None and response is not None and response.startswith(b"{"):
            return await overloaded(request, admitted.refused, response)
        head = head_number(service.backend)
        headers = {} if head is None else {HEAD_HEADER: str(head)}
        return web.Response(body=response or b"", content_type=CONTENT_TYPE, headers=headers)

    return handle_http


def make_app(service: RpcService, path: str = "/", access: BrowserAccess | None = None) -> web.Application:
    """A bare aiohttp application serving JSON-RPC at ``path`` (to the browser origins ``access`` allows)."""
    middlewares = [] if access is None else [access.middleware(path)]
    app = web.Application(client_max_size=service.limits.max_body_bytes + 1, middlewares=middlewares)
    app.router.add_route("*", path, make_handler(service))
    return app
