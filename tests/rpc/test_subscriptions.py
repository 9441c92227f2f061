"""The subscription hub over a fake chain: heads in order, removed logs on reorg, limits."""

from __future__ import annotations

import asyncio
import tracemalloc
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from rpc.errors import RpcError
from rpc.logs import LogFilter
from rpc.subscriptions import Connection, Hub


@dataclass(frozen=True)
class Header:
    block_number: int
    fork: str = "a"

    @property
    def hash(self) -> bytes:
        return f"{self.fork}{self.block_number}".encode().ljust(32, b"\0")

    @property
    def parent_hash(self) -> bytes:
        parent_fork = self.fork if self.block_number - 1 > FakeChain.fork_at.get(self.fork, 0) else "a"
        return Header(self.block_number - 1, parent_fork).hash


class FakeChain:
    """Fork "b" branches off fork "a" after block ``fork_at["b"]``; every block has one log."""

    fork_at = {"b": 3}

    def __init__(self) -> None:
        self.tip = Header(0)
        self.headers = {Header(n, f).hash: Header(n, f) for f in "ab" for n in range(0, 20)}

    def head(self) -> Header:
        return self.tip

    def header_by_hash(self, block_hash: bytes) -> Header | None:
        return self.headers.get(block_hash)

    def header_json(self, header: Header) -> dict[str, Any]:
        return {"number": hex(header.block_number), "hash": "0x" + header.hash.hex()}

    def logs(self, header: Header, flt: LogFilter) -> list[dict[str, Any]]:
        return [{"blockNumber": hex(header.block_number), "blockHash": "0x" + header.hash.hex(), "removed": False}]

    def syncing(self) -> Any:
        return False


def drain(connection: Connection) -> list[tuple[str, Any]]:
    out = []
    while not connection.queue.empty():
        message = orjson.loads(connection.queue.get_nowait())
        out.append((message["params"]["subscription"], message["params"]["result"]))
    return out


def test_each_head_once_in_order_and_removed_logs_when_the_head_moves_back() -> None:
    async def scenario() -> None:
        chain = FakeChain()
        hub = Hub(chain)
        connection = Connection(1000)
        hub.connections.add(connection)
        heads = hub.subscribe(connection, ["newHeads"])
        logs = hub.subscribe(connection, ["logs", {}])
        chain.tip = Header(2)
        hub.advance()
        chain.tip = Header(5)
        hub.advance()
        hub.advance()  # nothing new: nothing sent
        got = drain(connection)
        assert [int(r["number"], 16) for s, r in got if s == heads] == [1, 2, 3, 4, 5]
        assert [(int(r["blockNumber"], 16), r["removed"]) for s, r in got if s == logs] == [(n, False) for n in range(1, 6)]
        # The master's canonical head moves back to fork b at block 4 (b branches after 3).
        chain.tip = Header(5, "b")
        hub.advance()
        got = drain(connection)
        removed = [(int(r["blockNumber"], 16), r["blockHash"][2:4]) for s, r in got if s == logs and r["removed"]]
        added = [(int(r["blockNumber"], 16), r["blockHash"][2:4]) for s, r in got if s == logs and not r["removed"]]
        assert removed == [(4, "61"), (5, "61")]  # the old chain's logs first, oldest first ("a" = 0x61)
        assert added == [(4, "62"), (5, "62")]
        assert [r["hash"][2:4] for s, r in got if s == heads] == ["62", "62"]

    asyncio.run(scenario())


def test_log_subscriptions_with_equal_filters_share_one_scan_of_each_block() -> None:
    async def scenario() -> None:
        chain = FakeChain()
        scans: list[int] = []
        scan = chain.logs
        chain.logs = lambda header, flt: scans.append(header.block_number) or scan(header, flt)  # type: ignore[method-assign]
        hub = Hub(chain)
        first, second = Connection(1000), Connection(1000)
        hub.connections.update({first, second})
        hub.subscribe(first, ["logs", {}])
        hub.subscribe(second, ["logs", {}])
        chain.tip = Header(3)
        hub.advance()
        assert len(drain(first)) == len(drain(second)) == 3
        assert scans == [1, 2, 3]

    asyncio.run(scenario())


def test_a_client_that_does_not_read_is_disconnected() -> None:
    async def scenario() -> None:
        chain = FakeChain()
        hub = Hub(chain, queue_size=3)
        connection = Connection(3)
        dropped = []
        connection.on_overflow = lambda: dropped.append(True)
        hub.connections.add(connection)
        hub.subscribe(connection, ["newHeads"])
        chain.tip = Header(10)
        hub.advance()
        assert dropped == [True] and connection.closed and connection not in hub.connections
        assert hub.dropped_slow == 1 and connection.queue.qsize() == 3  # memory stays bounded

    asyncio.run(scenario())


def test_a_queued_message_holds_only_its_own_bytes() -> None:
    connection = Connection(1000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(1000):
            connection.notify("0x1", {"number": hex(number)})
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert connection.queue.qsize() == 1000
    assert held < 1000 * 1024  # orjson's own encodings held 4 KiB each


def test_subscriptions_per_connection_are_limited_and_unsubscribe_stops_them() -> None:
    async def scenario() -> None:
        chain = FakeChain()
        hub = Hub(chain, max_subscriptions=2)
        connection = Connection(100)
        hub.connections.add(connection)
        first = hub.subscribe(connection, ["newHeads"])
        hub.subscribe(connection, ["syncing"])
        with pytest.raises(RpcError, match="too many subscriptions"):
            hub.subscribe(connection, ["newHeads"])
        with pytest.raises(RpcError, match="no \"bogus\" subscription"):
            hub.subscribe(connection, ["bogus"])
        assert hub.unsubscribe(connection, [first]) is True
        assert hub.unsubscribe(connection, [first]) is False
        chain.tip = Header(3)
        hub.advance()
        assert drain(connection) == []

    asyncio.run(scenario())


def test_new_pending_transactions_get_each_hash_sent_after_subscribing_once() -> None:
    from filters.store import TxIndex

    async def scenario() -> None:
        index = TxIndex()
        index.advance(1, 0)  # the reader knows every partition from its start
        index.add(0, 0, b"\x01" * 32)  # before the subscription: not sent
        hub = Hub(FakeChain(), index)
        connection = Connection(100)
        hub.connections.add(connection)
        sub = hub.subscribe(connection, ["newPendingTransactions"])
        index.add(0, 1, b"\x02" * 32)
        index.add(1, 0, b"\x03" * 32)
        hub.advance_pending()
        hub.advance_pending()
        assert drain(connection) == [(sub, "0x" + "02" * 32), (sub, "0x" + "03" * 32)]

    asyncio.run(scenario())


async def test_a_feeder_nobody_follows_pending_transactions_on_arms_no_timer() -> None:
    from filters.store import TxIndex

    hub = Hub(FakeChain(), TxIndex())
    hub.connections.add(Connection(100))
    feeder = asyncio.ensure_future(hub.run())
    for _ in range(10):
        await asyncio.sleep(0)  # no timer of its own: only the feeder's wait can arm one
    assert [handle for handle in asyncio.get_running_loop()._scheduled if not handle.cancelled()] == []  # type: ignore[attr-defined]
    feeder.cancel()


async def test_a_pending_subscriber_gets_only_what_came_after_it_subscribed_though_the_feeder_slept() -> None:
    from filters.store import TxIndex

    index = TxIndex()
    index.advance(1, 0)
    hub = Hub(FakeChain(), index)
    connection = Connection(100)
    hub.connections.add(connection)
    hub.subscribe(connection, ["newHeads"])
    feeder = asyncio.ensure_future(hub.run(pending_interval=0.01))
    await asyncio.sleep(0.05)
    index.add(0, 0, b"\x01" * 32)  # while nobody followed pending transactions (the feeder slept)
    sub = hub.subscribe(connection, ["newPendingTransactions"])
    index.add(0, 1, b"\x02" * 32)
    await asyncio.sleep(0.05)
    feeder.cancel()
    assert drain(connection) == [(sub, "0x" + "02" * 32)]


async def test_websocket_clients_past_the_bound_are_refused_before_the_upgrade() -> None:
    hub = Hub(FakeChain(), max_connections=1)  # type: ignore[arg-type]

    async def no_answer(body: bytes) -> bytes | None:
        return None

    async def serve(request: web.Request) -> web.StreamResponse:
        return await hub.serve(request, no_answer, lambda: None)

    app = web.Application()
    app.router.add_get("/", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(url):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url)
            assert refused.value.status == 503
    finally:
        await runner.cleanup()
