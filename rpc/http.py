"""The JSON-RPC endpoint over HTTP: the answer to a request, and an aiohttp handler giving it.

``answer(service, read_body)`` is what any request is answered (admission, the dispatcher,
the head header, shedding): the port's front door (``rpc.frontdoor``) gives it to plain
posts, and ``make_handler(service)``'s ``handle_http(request)`` to everything the front door
hands to aiohttp. The replica's Faust worker mounts that handler on its web application, and
``make_app`` on a bare one (the master's RPC, tests). HTTP-level refusals are
geth's (``rpc/http.go``): 413 for a body over the limit, 415 for a content type that
is not JSON, 405 for PUT/DELETE, and an empty 200 for a bare GET health probe.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Mapping, NamedTuple

from aiohttp import web

from rpc.blockwait import HEAD_HEADER, head_number
from rpc.cors import BrowserAccess
from rpc.dispatch import encode_error
from rpc.errors import Overloaded
from rpc.service import RpcService

CONTENT_TYPE = "application/json"
JSON_ANSWER = {"Content-Type": CONTENT_TYPE}
PLAIN_TEXT = {"Content-Type": "text/plain; charset=utf-8"}
ACCEPTED_CONTENT_TYPES = frozenset({CONTENT_TYPE, "application/json-rpc", "application/jsonrequest"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _plain(status: int, text: str) -> web.Response:
    """geth's ``http.Error``: a text/plain body ending in a newline."""
    return web.Response(status=status, body=(text + "\n").encode(), headers=PLAIN_TEXT)


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
"""How long a client is asked to wait after a shed request; its connection stays quiet that long.

The connection's next request is read only after the pause (HTTP/1.1 reads a connection's next
request once the current one is answered): a client that retries at once instead of waiting costs
nothing more until then. Without that pause, 256 clients retrying at once kept the event loop busy
answering 503s and the apply agent still fell behind."""


class Answer(NamedTuple):
    """How one HTTP JSON-RPC request is answered, whichever server carries it (aiohttp's, or the
    front door's for plain posts: ``rpc.frontdoor``)."""

    status: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def shed(self) -> bool:
        """Refused for load: the connection pauses ``RETRY_AFTER_SECONDS`` after it."""
        return self.status == 503


def shed(error: Overloaded, body: bytes | None = None) -> Answer:
    """A request shed under load: HTTP 503 with Retry-After, and a JSON-RPC error (-32005) in the
    body for clients that read only the body (``body``: the call's own error response, which
    carries its id)."""
    return Answer(503, body or encode_error(None, error),
                  {**JSON_ANSWER, "Retry-After": str(RETRY_AFTER_SECONDS)})


async def answer(service: RpcService, read_body: Callable[[], Awaitable[bytes | None]]) -> Answer:
    """The answer to one JSON-RPC request whose body ``read_body`` reads (None: over the limit).

    The service's ``admission`` decides which requests are served (``rpc.shedding``); the rest
    are shed at once, before their body is read. A request of one call that a bound of its own
    refused after admission (``rpc.brokerwait``) is shed the same way (answered 200 instead,
    clients retrying at once spun: 5k refusals/s from 64 pollers past the bound). A batch keeps
    200: its other calls may have been answered.
    """
    admission = service.admission
    refused = admission.refusal()
    if refused is not None:
        return shed(refused)
    with admission.held() as admitted:
        body = await read_body()
        if body is None:
            limit = service.limits.max_body_bytes
            return Answer(413, f"content length too large (>{limit})\n".encode(), PLAIN_TEXT)
        response = await service.dispatcher.handle_body(body)
    if admitted.refused is not None and response is not None and response.startswith(b"{"):
        return shed(admitted.refused, response)
    head = head_number(service.backend)
    return Answer(200, response or b"", JSON_ANSWER if head is None else {**JSON_ANSWER, HEAD_HEADER: str(head)})


def make_handler(service: RpcService) -> Handler:
    """The aiohttp handler serving JSON-RPC for ``service`` (mount it on POST and GET)."""
    max_body = service.limits.max_body_bytes

    async def handle_http(request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and not request.content_length and not request.query_string:
            return web.Response(status=200)  # geth: "dumb empty requests" for health checks
        refusal = _refusal(request, max_body)
        if refusal is not None:
            return refusal
        reply = await answer(service, lambda: _read_body(request, max_body))
        response = web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        if reply.shed:
            await response.prepare(request)
            await response.write_eof()
            await asyncio.sleep(RETRY_AFTER_SECONDS)
        return response

    return handle_http


def make_app(service: RpcService, path: str = "/", access: BrowserAccess | None = None) -> web.Application:
    """A bare aiohttp application serving JSON-RPC at ``path`` (to the browser origins ``access`` allows)."""
    middlewares = [] if access is None else [access.middleware(path)]
    app = web.Application(client_max_size=service.limits.max_body_bytes + 1, middlewares=middlewares)
    app.router.add_route("*", path, make_handler(service))
    return app
