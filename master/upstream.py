"""The trusted upstream node, over JSON-RPC (HTTP) and, where offered, WebSocket.

What the follower needs from any execution client (geth, reth, Nethermind, Besu,
Erigon, anvil): its head, a block's header by number, a block's raw RLP and new-head
notifications. Raw blocks come from ``debug_getRawBlock`` where the upstream offers it
and are rebuilt from ``eth_getBlockByNumber`` (full transactions) where it does not
(``chain.rpcblock``); the first "method not found" switches for good. New heads come
from ``eth_subscribe("newHeads")`` over WebSocket when that works, else from polling.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, AsyncIterator

import aiohttp

from chain.rpcblock import raw_block

log = logging.getLogger("ethercattle.upstream")

METHOD_NOT_FOUND = -32601


def http_url(url: str) -> str:
    """The HTTP endpoint of a node given by its HTTP or WebSocket URL (clients serve both on one port)."""
    return url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)


class UpstreamError(Exception):
    """The upstream could not be asked (network, HTTP status) or answered with an error."""


class UpstreamUnavailable(UpstreamError):
    """Transient: the upstream is unreachable or overloaded; ask again later."""


class UpstreamRefused(UpstreamError):
    """The upstream answered with a JSON-RPC error.

    Attributes:
        code: the JSON-RPC error code.
    """

    def __init__(self, method: str, code: int, message: str) -> None:
        self.code = code
        super().__init__(f"{method}: {message} ({code})")


class Upstream:
    """``async with Upstream(url) as upstream:`` then ask it; ``url`` is http(s):// or ws(s)://."""

    def __init__(self, url: str, timeout: float = 10.0, poll_interval: float = 0.25) -> None:
        self.url = url
        self.http_url = http_url(url)
        self.ws_url = url if url.startswith(("ws://", "wss://")) else None
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.raw_blocks_offered: bool | None = None
        """Whether ``debug_getRawBlock`` works there (None: not asked yet)."""
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "Upstream":
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; raises ``UpstreamUnavailable`` (retry) or ``UpstreamRefused``."""
        assert self._session is not None, "use Upstream inside `async with`"
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        try:
            async with self._session.post(self.http_url, json=payload) as response:
                if response.status >= 500 or response.status == 429:
                    raise UpstreamUnavailable(f"{method}: HTTP {response.status} from {self.http_url}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise UpstreamUnavailable(f"{method}: {type(exc).__name__}: {exc} ({self.http_url})") from exc
        if not isinstance(body, dict):
            raise UpstreamUnavailable(f"{method}: not a JSON-RPC response: {body!r:.200}")
        error = body.get("error")
        if error is not None:
            raise UpstreamRefused(method, int(error.get("code", 0)), str(error.get("message", "")))
        return body.get("result")

    async def head_number(self) -> int:
        return int(await self.call("eth_blockNumber"), 16)

    async def block(self, number: int | str, full: bool = False) -> dict[str, Any] | None:
        """The canonical block at ``number`` (or a tag: "safe", "finalized") as JSON, or None where there is none."""
        found = await self.call("eth_getBlockByNumber", hex(number) if isinstance(number, int) else number, full)
        return found if isinstance(found, dict) else None

    async def chain_id(self) -> int:
        return int(await self.call("eth_chainId"), 16)

    async def raw_block(self, number: int) -> bytes | None:
        """The canonical block at ``number`` as consensus RLP, or None beyond the head."""
        if self.raw_blocks_offered is not False:
            try:
                found = await self.call("debug_getRawBlock", hex(number))
            except UpstreamRefused as exc:
                if exc.code != METHOD_NOT_FOUND:
                    raise
                if self.raw_blocks_offered is None:
                    log.info("the upstream has no debug_getRawBlock: blocks are rebuilt from eth_getBlockByNumber")
                self.raw_blocks_offered = False
            else:
                self.raw_blocks_offered = True
                return bytes.fromhex(found[2:]) if isinstance(found, str) and found != "0x" else None
        return await self.rebuilt_block(number)

    async def rebuilt_block(self, number: int) -> bytes | None:
        """The block at ``number`` rebuilt from its JSON form with full transactions, and its uncles."""
        block = await self.block(number, full=True)
        if block is None:
            return None
        uncles = [await self.call("eth_getUncleByBlockHashAndIndex", block["hash"], hex(index))
                  for index in range(len(block.get("uncles") or ()))]
        return raw_block(block, uncles)

    async def new_heads(self) -> AsyncIterator[None]:
        """Yields whenever the upstream may have a new head: a ``newHeads`` notification, or a poll tick.

        A WebSocket that fails or closes falls back to polling until it reconnects.
        """
        while True:
            if self.ws_url is not None:
                try:
                    async for _ in self._subscribed_heads(self.ws_url):
                        yield None
                except (aiohttp.ClientError, asyncio.TimeoutError, UpstreamError) as exc:
                    log.warning("newHeads over WebSocket failed (%s); polling for a while", exc)
                for _ in range(int(5 / self.poll_interval)):
                    yield None
                    await asyncio.sleep(self.poll_interval)
            else:
                yield None
                await asyncio.sleep(self.poll_interval)

    async def _subscribed_heads(self, url: str) -> AsyncIterator[None]:
        assert self._session is not None
        async with self._session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=self.timeout), heartbeat=30) as ws:
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]})
            answer = await ws.receive_json(timeout=self.timeout)
            if "error" in answer:
                raise UpstreamRefused("eth_subscribe", int(answer["error"].get("code", 0)), str(answer["error"].get("message")))
            log.info("subscribed to the upstream's newHeads over WebSocket")
            yield None  # catch up on what happened before the subscription
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                yield None
