"""The front door of an RPC port: plain JSON-RPC posts answered straight off the socket.

Nearly every request a node gets is the same shape: ``POST /`` over a kept-alive
HTTP/1.1 connection, a JSON content type, a length, a small body. aiohttp spent
most of a cheap call's CPU on its own protocol, request, stream reader, response
and writer objects: a replica's ``eth_blockNumber`` cost 108-111 us of CPU through
aiohttp and costs 48-72 us through the front door (same worker, same run, on this
project's 2-core machine), so a replica serves about twice the requests per core.

Each connection starts at the front door. A request it recognises as plain (see
``plain_post``) is answered here, through the same ``rpc.http.answer`` as aiohttp's
handler. The first request that is anything else (another method or path, a CORS
preflight, a WebSocket upgrade, a chunked or large body, HTTP/1.0, ``Expect``,
an unusual header line) is handed to aiohttp with the
connection, from that request's first byte, after the answers before it are
written: aiohttp's parser, application and refusals then serve it, and everything
after it on that connection. The recognizer is strict on purpose: what it does not
understand exactly is aiohttp's to judge, so the two never read a request
differently.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from typing import Any

from aiohttp import web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.web_server import Server

from rpc.cors import BrowserAccess
from rpc.http import ACCEPTED_CONTENT_TYPES, PLAIN_TEXT, RETRY_AFTER_SECONDS, Answer, answer
from rpc.service import RpcService

log = logging.getLogger(__name__)

HEAD_LIMIT = 8190
"""The longest request line and headers the front door reads (aiohttp's line limit); a
longer head is aiohttp's to refuse."""

BODY_LIMIT = 64 * 1024
"""The longest body the front door buffers. It reads a body before the request is admitted,
so this bounds what each connection holds; a longer one goes to aiohttp, which reads it
as an admitted request, within ``RPC_MAX_BODY_BYTES``."""

METHOD = b"POST "
END_OF_HEAD = b"\r\n\r\n"


class PlainPost:
    """One plain JSON-RPC post, as read off the connection."""

    __slots__ = ("body", "close", "end", "origin")

    def __init__(self, body: bytes, close: bool, end: int, origin: str | None = None) -> None:
        self.body = body
        self.close = close
        """The client asked to close the connection after the answer."""
        self.end = end
        """Where the request ends in the buffer it was read from."""
        self.origin = origin
        """The page's origin, for a browser's or a wallet's post (the CORS rules)."""

    async def read(self) -> bytes:
        """The body, already read (``rpc.http.answer`` reads a body once the request is admitted)."""
        return self.body


MORE = "more"
"""``plain_post``: the request is not all here yet."""


HEAD = re.compile(rb"POST ([^ \r\n]+) HTTP/1\.1\r\n((?:[0-9A-Za-z-]+:[^\r\n]*\r\n)*)\r\n")
"""A plain post's request line and header lines, each ``Name:value`` with a name of letters,
digits and dashes (no space before the colon, no folded or bare-LF lines)."""

FIELDS = re.compile(rb"^(content-length|content-type|connection|transfer-encoding|origin|upgrade|expect):([^\r\n]*)\r$",
                    re.IGNORECASE | re.MULTILINE)
"""The header lines the front door reads; it ignores the others."""


def plain_post(buffer: bytes | bytearray, start: int, path: bytes = b"/",
               body_limit: int = BODY_LIMIT) -> PlainPost | str | None:
    """The plain post beginning at ``start`` of ``buffer``; ``MORE`` when it has not all arrived;
    None when the request there is anything else.

    Plain means: ``POST <path> HTTP/1.1`` and ``HEAD``'s header lines; exactly one
    ``Content-Length``, of at most ``body_limit``; a ``Content-Type`` that geth accepts for
    JSON; at most one ``Origin``; none of the headers that ask for more than a plain post:
    ``Transfer-Encoding`` (chunked bodies), ``Upgrade``, ``Expect``.
    """
    end = buffer.find(END_OF_HEAD, start, start + HEAD_LIMIT)
    if end < 0:
        if len(buffer) - start < HEAD_LIMIT and buffer.startswith(METHOD[:len(buffer) - start], start):
            return MORE
        return None
    head = HEAD.fullmatch(buffer, start, end + len(END_OF_HEAD))
    if head is None or head[1] != path:
        return None
    length = content_type = origin = None
    close = False
    for name, value in FIELDS.findall(head[2]):
        name, value = name.lower(), value.strip()
        if name == b"content-length":
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif name == b"content-type":
            content_type = value.partition(b";")[0].rstrip().lower()
        elif name == b"connection":
            close = b"close" in (token.strip() for token in value.lower().split(b","))
        elif name == b"origin" and origin is None:
            origin = value.decode("latin-1")
        else:
            return None
    if length is None or length > body_limit or content_type is None \
            or content_type.decode("latin-1") not in ACCEPTED_CONTENT_TYPES:
        return None
    body_start = end + len(END_OF_HEAD)
    if len(buffer) < body_start + length:
        return MORE
    return PlainPost(bytes(buffer[body_start:body_start + length]), close, body_start + length, origin)


LARGE_ANSWER = 64 * 1024
"""From this size an answer is written after its head instead of joined to it (a copy)."""

STATUS_LINES = {200: b"HTTP/1.1 200 OK\r\n", 413: b"HTTP/1.1 413 Request Entity Too Large\r\n",
                500: b"HTTP/1.1 500 Internal Server Error\r\n", 503: b"HTTP/1.1 503 Service Unavailable\r\n"}


def encode_answer(answer: Answer, close: bool) -> bytes:
    """The response's status line and headers (the date as aiohttp's responses give it, formatted once a second)."""
    head = [STATUS_LINES[answer.status]]
    head.extend(b"%s: %s\r\n" % (name.encode(), value.encode()) for name, value in answer.headers.items())
    head.append(b"Content-Length: %d\r\nDate: %s\r\n%s\r\n" % (len(answer.body), rfc822_formatted_time().encode(),
                                                              b"Connection: close\r\n" if close else b""))
    return b"".join(head)


KEEPALIVE_TIMEOUT = 3630.0
"""Seconds an idle connection is kept (aiohttp's default for its own)."""

INTERNAL_ERROR = Answer(500, b"500 Internal Server Error\n", PLAIN_TEXT)


class FrontDoor:
    """The protocol factory of an RPC port (aiohttp's ``Server`` in its place): every connection
    starts as a ``PlainPostConnection``; ``application`` serves what the front door hands over.

    ``access`` holds the port's CORS rules: the front door answers posts that carry an
    ``Origin`` (wallets send one with every call) with the headers the application's
    ``BrowserAccess.middleware`` would add; preflights are the application's."""

    def __init__(self, application: Server, service: RpcService, access: BrowserAccess, path: str = "/",
                 keepalive_timeout: float = KEEPALIVE_TIMEOUT) -> None:
        self.application = application
        self.service = service
        self.access = access
        self.path = path.encode()
        self.body_limit = min(BODY_LIMIT, service.limits.max_body_bytes)
        self.keepalive_timeout = keepalive_timeout
        self.connections: set[PlainPostConnection] = set()

    def __call__(self) -> asyncio.Protocol:
        return PlainPostConnection(self)

    def __getattr__(self, name: str) -> Any:
        """The rest of aiohttp's ``Server`` (its runner reads it as the one it built)."""
        return getattr(self.application, name)

    def pre_shutdown(self) -> None:
        self.application.pre_shutdown()
        for connection in list(self.connections):
            connection.close()

    async def shutdown(self, timeout: float | None = None) -> None:
        await asyncio.gather(*(connection.finished(timeout) for connection in list(self.connections)))
        await self.application.shutdown(timeout)


class PlainPostConnection(asyncio.Protocol):
    """One connection while it sends plain posts: requests are answered in order, one at a time.

    Reading pauses while two requests wait (a client pipelining) and while the connection is
    being handed over; the next request waits while the client does not read its answers (the
    transport's buffer is full). So a connection holds at most a few requests' bytes.
    """

    def __init__(self, door: FrontDoor) -> None:
        self.door = door
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.requests: deque[PlainPost] = deque()
        self.handing_over = False
        self.serving: asyncio.Task[None] | None = None
        self.reading_paused = False
        self.writable: asyncio.Future[None] | None = None
        self.closing = False
        self.last_active = 0.0
        self.idle_check: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.door.connections.add(self)
        loop = asyncio.get_running_loop()
        self.last_active = loop.time()
        self.idle_check = loop.call_later(self.door.keepalive_timeout, self._close_if_idle)

    def connection_lost(self, exc: BaseException | None) -> None:
        """A call being answered runs to its end, as aiohttp lets its handlers do: cancelled
        midway, a sent transaction could reach the topic or not, unknown to the other senders
        waiting on the same send."""
        self.closing = True
        self.requests.clear()
        self._forget()
        self.resume_writing()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buffer += data
        if self.handing_over:
            return
        start = 0
        while True:
            request = plain_post(self.buffer, start, self.door.path, self.door.body_limit)
            if request is MORE:
                break
            if not isinstance(request, PlainPost):
                self.handing_over = True
                break
            self.requests.append(request)
            start = request.end
            if request.close:
                self.closing = True
                break
        del self.buffer[:start]
        if self.serving is None:
            if self.requests:
                self.serving = asyncio.get_running_loop().create_task(self._serve())
            elif self.handing_over:
                self._hand_over()
                return
        if self.handing_over or len(self.requests) > 1:
            self._pause_reading()

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    async def _serve(self) -> None:
        """Answer the waiting requests in order, then hand the connection over if it asked for that."""
        transport = self.transport
        assert transport is not None
        try:
            while self.requests:
                request = self.requests.popleft()
                try:
                    reply = await answer(self.door.service, request.read)
                    if request.origin is not None:
                        reply = reply._replace(headers={**reply.headers, **self.door.access.cors_headers(request.origin)})
                except Exception:  # a fault of ours: this request fails, the process goes on
                    log.exception("answering a JSON-RPC post failed")
                    reply, request.close = INTERNAL_ERROR, True
                if transport.is_closing():
                    return
                close = request.close or self.closing and not self.requests
                head = encode_answer(reply, close)
                if len(reply.body) < LARGE_ANSWER:
                    transport.write(head + reply.body)
                else:
                    transport.writelines((head, reply.body))
                if close:
                    transport.close()
                    return
                if reply.shed:
                    await asyncio.sleep(RETRY_AFTER_SECONDS)
                if self.writable is not None:
                    await self.writable
                self.last_active = asyncio.get_running_loop().time()
        finally:
            self.serving = None
        if self.handing_over:
            self._hand_over()
        elif self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()

    def _pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def _hand_over(self) -> None:
        """aiohttp serves this connection from here on, beginning with the request it holds."""
        transport = self.transport
        assert transport is not None
        self._forget()
        if transport.is_closing():
            return
        handler = self.door.application()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self.buffer:
            handler.data_received(bytes(self.buffer))
        if self.reading_paused:
            transport.resume_reading()

    def _forget(self) -> None:
        self.door.connections.discard(self)
        if self.idle_check is not None:
            self.idle_check.cancel()
            self.idle_check = None

    def _close_if_idle(self) -> None:
        """Close the connection after ``keepalive_timeout`` without a request answered (aiohttp's
        rule for its own connections), also when a request has only partly arrived."""
        loop = asyncio.get_running_loop()
        idle_for = loop.time() - self.last_active
        if self.serving is None and idle_for >= self.door.keepalive_timeout:
            self.close()
            return
        self.idle_check = loop.call_later(max(self.door.keepalive_timeout - idle_for, 1.0), self._close_if_idle)

    def close(self) -> None:
        """Read nothing more; close once the request being answered is answered."""
        self.closing = True
        self.requests.clear()
        if self.serving is None and self.transport is not None:
            self.transport.close()

    async def finished(self, timeout: float | None) -> None:
        """Wait (at most ``timeout``) for the request being answered, then close."""
        serving = self.serving
        if serving is not None:
            await asyncio.wait([serving], timeout=timeout)
        if self.transport is not None:
            self.transport.close()


class FrontDoorRunner(web.AppRunner):
    """An ``AppRunner`` whose port opens onto a ``FrontDoor`` for ``service`` at ``path``, with the
    CORS rules ``access`` (the same as ``app``'s middleware applies)."""

    def __init__(self, app: web.Application, service: RpcService, access: BrowserAccess, path: str = "/",
                 **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.service = service
        self.access = access
        self.path = path
        self.keepalive_timeout = kwargs.get("keepalive_timeout", KEEPALIVE_TIMEOUT)

    async def _make_server(self) -> Server:
        door = FrontDoor(await super()._make_server(), self.service, self.access, self.path, self.keepalive_timeout)
        return door  # type: ignore[return-value]  # aiohttp's runner and sites use it as their Server
