"""eth_subscribe over WebSocket, as geth serves it: newHeads, logs, newPendingTransactions, syncing.

The replica's RPC port upgrades ``GET /`` to a WebSocket (``views``); every
JSON-RPC method works over it, and ``eth_subscribe`` / ``eth_unsubscribe`` add
notifications. The ``Hub`` is woken by the apply agent (``ReplicaState``
listeners) after each group it writes; it walks from the last head it announced
to the new head and sends each new head once, in order, with the logs of each
block to matching ``logs`` subscriptions. When the canonical head moved back or
sideways (a reorg on the master), the logs of the blocks that left the canonical
chain go out first with ``removed: true``, as geth sends them.

Limits: ``max_subscriptions`` per connection; each connection has a bounded send
queue, and a client that lets it fill (does not read) is disconnected, so memory
never grows with a slow consumer.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

import orjson
from aiohttp import WSMsgType, web

from rpc.backend import ReplicaBackend
from rpc.errors import INVALID_PARAMS, RpcError
from rpc.format import header_json, quantity
from rpc.logs import MAX_TOPICS, LogFilter, block_logs, bloom_matches, log_filter
from rpc.response_cache import compact

log = logging.getLogger(__name__)

JSON = dict[str, Any]
MAX_BLOCKS_PER_WAKE = 256
"""Most blocks announced in one round; the next round continues (a replica catching up)."""
REMEMBERED_HEADS = 256
"""Announced heads kept to find the fork point of a reorg (deeper reorgs restart from the new head)."""


class Header(Protocol):
    @property
    def block_number(self) -> int: ...

    @property
    def hash(self) -> bytes: ...

    @property
    def parent_hash(self) -> bytes: ...


class ChainReader(Protocol):
    """What the hub reads from the replica's chain (``BackendChain`` over the RPC backend)."""

    def head(self) -> Header: ...

    def header_by_hash(self, block_hash: bytes) -> Header | None: ...

    def header_json(self, header: Header) -> JSON: ...

    def logs(self, header: Header, flt: LogFilter) -> list[JSON]: ...

    def syncing(self) -> Any: ...
    """eth_syncing's answer (False when not syncing)."""


class BackendChain:
    """``ChainReader`` over the RPC's backend (the replica's read-only LevelDB view)."""

    def __init__(self, backend: ReplicaBackend) -> None:
        self.backend = backend

    def head(self) -> Header:
        return self.backend.head()  # type: ignore[return-value]

    def header_by_hash(self, block_hash: bytes) -> Header | None:
        return self.backend.header_by_hash(block_hash)  # type: ignore[return-value]

    def header_json(self, header: Header) -> JSON:
        return header_json(header)  # type: ignore[arg-type]

    def logs(self, header: Header, flt: LogFilter) -> list[JSON]:
        if not bloom_matches(header.bloom, flt):  # type: ignore[attr-defined]
            return []
        return list(block_logs(self.backend.block(header), flt))  # type: ignore[arg-type]

    def syncing(self) -> Any:
        progress = self.backend.sync_status.progress()
        if progress is None:
            return False
        return {"startingBlock": quantity(progress.starting_block), "currentBlock": quantity(progress.current_block),
                "highestBlock": quantity(progress.highest_block)}


class PendingFeed(Protocol):
    """Positions in the transaction topic (``filters.store.TxIndex``)."""

    def since(self, cursor: dict[int, int], limit: int) -> tuple[list[bytes], dict[int, int]]: ...

    def head(self) -> dict[int, int]: ...


class SlowConsumer(Exception):
    """The client's send queue is full."""


@dataclass
class Subscription:
    id: str
    kind: str
    flt: LogFilter | None = None


@dataclass(eq=False)
class Connection:
    """One WebSocket client: its subscriptions and its bounded send queue."""

    queue_size: int
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    queue: asyncio.Queue[bytes | None] = field(init=False)
    closed: bool = False
    slow: bool = False
    on_overflow: Callable[[], None] = lambda: None
    """Called once when the queue overflows: drops the client's connection at once."""

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.queue_size)

    def send(self, message: bytes) -> None:
        """Queue a message; a full queue marks the connection for disconnection.

        The queue keeps a compact copy: orjson's encoding holds a 4 KiB buffer, so a slow
        client's 1,000 queued messages held 4 MB, not the few hundred kB they are."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(compact(message))
        except asyncio.QueueFull:
            self.closed = self.slow = True
            self.on_overflow()
            raise SlowConsumer() from None

    def notify(self, subscription: str, result: Any) -> None:
        self.send(orjson.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                                "params": {"subscription": subscription, "result": result}}))


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


class Hub:
    """Every WebSocket connection of this replica, fed from the chain as the apply agent writes.

    Arguments:
        chain: reads heads, headers and logs.
        pending: the transaction topic's positions (None: no newPendingTransactions).
        max_subscriptions: per connection.
        queue_size: messages queued per connection before it is dropped as a slow consumer.
        max_connections: WebSocket clients at once; the next are refused (HTTP 503) before the upgrade,
            so memory stays under max_connections x queue_size messages.
    """

    def __init__(self, chain: ChainReader, pending: PendingFeed | None = None, max_subscriptions: int = 100,
                 queue_size: int = 1000, max_connections: int = 1000) -> None:
        self.chain = chain
        self.pending = pending
        self.max_subscriptions = max_subscriptions
        self.queue_size = queue_size
        self.max_connections = max_connections
        self.connections: set[Connection] = set()
        self.announced: deque[tuple[int, bytes]] = deque(maxlen=REMEMBERED_HEADS)
        self.wake = asyncio.Event()
        self.pending_cursor: dict[int, int] | None = None
        self.last_syncing: Any = None
        self.dropped_slow = 0
        self.heads_announced = 0

    # -- subscriptions ------------------------------------------------------------------

    def subscribe(self, connection: Connection, params: Any) -> str:
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            raise RpcError("invalid argument 0: expected subscription name", code=INVALID_PARAMS)
        kind = params[0]
        if kind not in ("newHeads", "logs", "newPendingTransactions", "syncing"):
            raise RpcError(f"no \"{kind}\" subscription in eth namespace", code=-32601)
        if len(connection.subscriptions) >= self.max_subscriptions:
            raise RpcError(f"too many subscriptions on this connection (most {self.max_subscriptions})", code=-32005)
        flt = None
        if kind == "logs":
            flt = log_filter(params[1] if len(params) > 1 else None)
            if len(flt.topics) > MAX_TOPICS:
                raise RpcError("exceed max topics")
        if kind == "newPendingTransactions" and self.pending is None:
            raise RpcError("pending transactions are not available here")
        self._start_cursors()
        if kind == "newPendingTransactions" and self.pending is not None and not self._wanted(kind):
            self.pending_cursor = self.pending.head()  # the feeder followed the pool only as it woke: from now on
            self.wake.set()  # and polls it from now on, while someone follows it
        sub = Subscription("0x" + secrets.token_hex(16), kind, flt)
        connection.subscriptions[sub.id] = sub
        return sub.id

    def _start_cursors(self) -> None:
        if not self.announced:
            head = self.chain.head()
            self.announced.append((head.block_number, head.hash))
        if self.pending is not None and self.pending_cursor is None:
            self.pending_cursor = self.pending.head()

    @staticmethod
    def unsubscribe(connection: Connection, params: Any) -> bool:
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            raise RpcError("invalid argument 0: expected subscription id", code=INVALID_PARAMS)
        return connection.subscriptions.pop(params[0].lower(), None) is not None

    # -- feeding ------------------------------------------------------------------------

    def applied(self, *_: Any) -> None:
        """The apply agent's listener: cheap, just wakes the feeder."""
        self.wake.set()

    def _deliver(self, kind: str, make: Callable[[Subscription], Any]) -> None:
        for connection in list(self.connections):
            for sub in list(connection.subscriptions.values()):
                if sub.kind != kind:
                    continue
                result = make(sub)
                if result is None:
                    continue
                try:
                    connection.notify(sub.id, result)
                except SlowConsumer:
                    self._drop_slow(connection)
                    break

    def _drop_slow(self, connection: Connection) -> None:
        """Forget a connection whose queue overflowed (its socket is already aborted), and say so."""
        self.dropped_slow += 1
        self.connections.discard(connection)
        log.warning("WebSocket client dropped: %d messages unread (WS_SEND_QUEUE); %d dropped since start",
                    self.queue_size, self.dropped_slow)

    def _wanted(self, kind: str) -> bool:
        return any(sub.kind == kind for c in self.connections for sub in c.subscriptions.values())

    def advance(self) -> int:
        """Announce what changed since the last call; returns how many heads went out."""
        if not self.announced:
            return 0
        head = self.chain.head()
        last_number, last_hash = self.announced[-1]
        if head.hash == last_hash:
            return 0
        known = {block_hash: number for number, block_hash in self.announced}
        fresh: list[Header] = []
        cursor: Header | None = head
        while cursor is not None and cursor.hash not in known and cursor.block_number > 0:
            fresh.append(cursor)
            if len(fresh) > MAX_BLOCKS_PER_WAKE + REMEMBERED_HEADS:
                break
            cursor = self.chain.header_by_hash(cursor.parent_hash)
        if cursor is None or cursor.hash not in known:
            # Unknown fork point (deeper than we remember, or a restart): restart from the head.
            self.announced.clear()
            self.announced.append((head.block_number, head.hash))
            return 0
        fork = known[cursor.hash]
        dropped = [(n, h) for n, h in self.announced if n > fork]
        while self.announced and self.announced[-1][0] > fork:
            self.announced.pop()
        for _, block_hash in dropped:  # geth: the old chain's logs, removed, oldest first
            header = self.chain.header_by_hash(block_hash)
            if header is not None:
                self._send_logs(header, removed=True)
        fresh.reverse()
        fresh = fresh[:MAX_BLOCKS_PER_WAKE]
        for header in fresh:
            self.announced.append((header.block_number, header.hash))
            if self._wanted("newHeads"):
                header_json = self.chain.header_json(header)
                self._deliver("newHeads", lambda sub: header_json)
            self._send_logs(header, removed=False)
        self.heads_announced += len(fresh)
        if fresh and fresh[-1].hash != head.hash:
            self.wake.set()  # more to announce: next round
        return len(fresh)

    def _send_logs(self, header: Header, removed: bool) -> None:
        if not self._wanted("logs"):
            return
        scanned: dict[LogFilter, list[JSON]] = {}  # subscriptions with equal filters share one scan of the block

        def matching(sub: Subscription) -> list[JSON]:
            assert sub.flt is not None
            found = scanned.get(sub.flt)
            if found is None:
                found = scanned[sub.flt] = self.chain.logs(header, sub.flt)
            return [{**entry, "removed": removed} for entry in found]

        for connection in list(self.connections):
            for sub in list(connection.subscriptions.values()):
                if sub.kind != "logs":
                    continue
                try:
                    for entry in matching(sub):
                        connection.notify(sub.id, entry)
                except SlowConsumer:
                    self._drop_slow(connection)
                    break

    def advance_pending(self, limit: int = 10_000) -> int:
        if self.pending is None or self.pending_cursor is None or not self._wanted("newPendingTransactions"):
            if self.pending is not None:
                self.pending_cursor = self.pending.head()
            return 0
        hashes, self.pending_cursor = self.pending.since(self.pending_cursor, limit)
        for tx_hash in hashes:
            text = _hex(tx_hash)
            self._deliver("newPendingTransactions", lambda sub: text)
        return len(hashes)

    def advance_syncing(self) -> None:
        status = self.chain.syncing()
        if status == self.last_syncing:
            return
        self.last_syncing = status
        payload = {"syncing": False} if status is False else {"syncing": True, "status": status}
        self._deliver("syncing", lambda sub: payload)

    async def run(self, pending_interval: float = 0.05) -> None:
        """The feeder: after each applied group, and every ``pending_interval`` s for pending hashes while a
        client follows them (no timer otherwise: an idle replica's loop sleeps)."""
        while True:
            try:
                timeout = pending_interval if self._wanted("newPendingTransactions") else None
                await asyncio.wait_for(self.wake.wait(), timeout=timeout)
            except asyncio.TimeoutError:
                pass
            woke = self.wake.is_set()
            self.wake.clear()
            try:
                if woke and self.connections:
                    self.advance()
                    self.advance_syncing()
                elif woke:
                    self.announced.clear()  # nobody listens: start afresh from the head later
                self.advance_pending()
            except Exception:  # noqa: BLE001 - a read racing the apply agent; the next round retries
                log.debug("subscriptions: a round failed", exc_info=True)
                self.wake.set()
                await asyncio.sleep(0.05)

    # -- the WebSocket ------------------------------------------------------------------

    async def serve(self, request: web.Request, handle_body: Callable[[bytes], Awaitable[bytes | None]],
                    check_ready: Callable[[], None]) -> web.StreamResponse:
        """One client: JSON-RPC requests in, answers and notifications out."""
        if len(self.connections) >= self.max_connections:
            return web.Response(status=503, text=f"too many WebSocket clients (at most {self.max_connections})\n",
                                headers={"Retry-After": "1"})
        socket = web.WebSocketResponse(heartbeat=30, max_msg_size=5 * 1024 * 1024, timeout=2.0)
        transport = request.transport
        await socket.prepare(request)
        connection = Connection(self.queue_size)
        if transport is not None:
            connection.on_overflow = transport.abort  # a slow reader: no close handshake, it would block too
        self.connections.add(connection)
        sender = asyncio.create_task(self._send_loop(socket, connection))
        try:
            async for message in socket:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                body = message.data.encode() if isinstance(message.data, str) else message.data
                answer = await self._answer(connection, body, handle_body, check_ready)
                if answer is not None:
                    try:
                        connection.send(answer)
                    except SlowConsumer:
                        self._drop_slow(connection)
                if connection.closed:
                    break
        finally:
            self.connections.discard(connection)
            connection.closed = True
            sender.cancel()
            if not connection.slow:
                await socket.close()
        return socket

    @staticmethod
    async def _send_loop(socket: web.WebSocketResponse, connection: Connection) -> None:
        try:
            while not connection.closed:
                message = await connection.queue.get()
                if message is None:
                    return
                await socket.send_str(message.decode())
        except (ConnectionError, RuntimeError):
            connection.closed = True

    async def _answer(self, connection: Connection, body: bytes,
                      handle_body: Callable[[bytes], Awaitable[bytes | None]],
                      check_ready: Callable[[], None]) -> bytes | None:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return await handle_body(body)
        if not isinstance(request, dict) or request.get("method") not in ("eth_subscribe", "eth_unsubscribe"):
            return await handle_body(body)
        request_id = request.get("id")
        try:
            check_ready()
            if request["method"] == "eth_subscribe":
                result: Any = self.subscribe(connection, request.get("params"))
            else:
                result = self.unsubscribe(connection, request.get("params"))
        except RpcError as error:
            return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error.to_json()})
        return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})
