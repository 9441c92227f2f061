"""The filter methods over a fake chain and the real (in-memory) filter store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson
import pytest
from eth.db.atomic import AtomicDB

from chain.dev import init_dev_chain
from filters.methods import FilterLimits, Filters
from filters.store import FilterStore, TxIndex, decode, encode
from rpc.errors import LimitExceeded, ServerError
from rpc.limits import RpcLimits
from rpc.service import RpcService

FORK_AFTER = {1: 6}
"""Fork 1 branches off fork 0 after block 6."""


@dataclass(frozen=True)
class Header:
    block_number: int
    fork: int = 0

    @property
    def hash(self) -> bytes:
        return (self.fork * 1000 + self.block_number).to_bytes(32, "big")

    @property
    def parent_hash(self) -> bytes:
        parent = self.block_number - 1
        return Header(parent, self.fork if parent > FORK_AFTER.get(self.fork, -1) else 0).hash


@dataclass
class FakeBackend:
    number: int = 5
    limits: RpcLimits = field(default_factory=RpcLimits)
    fork: int = 0

    def head(self) -> Header:
        return self._canonical(self.number)

    def _canonical(self, number: int) -> Header:
        return Header(number, self.fork if number > FORK_AFTER.get(self.fork, -1) else 0)

    def canonical_hash(self, number: int) -> bytes | None:
        return self._canonical(number).hash if number <= self.number else None

    def header_by_number(self, number: int) -> Header | None:
        return self._canonical(number) if number <= self.number else None

    def header_by_hash(self, block_hash: bytes) -> Header | None:
        value = int.from_bytes(block_hash, "big")
        header = Header(value % 1000, value // 1000)
        if header.block_number > self.number and header == self._canonical(header.block_number):
            return None  # a block of this branch above the head: this replica has not applied it yet
        return header

    async def offload(self, work: Callable[..., Any], *args: Any) -> Any:
        return work(*args)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def store_with_log(clock: Clock) -> tuple[FilterStore, list[tuple[str, Any]]]:
    store = FilterStore(clock)
    store.loaded = True
    published: list[tuple[str, Any]] = []

    async def publish(filter_id: str, value: Any) -> None:
        assert decode(encode(value)) == value  # what goes on the topic comes back the same
        published.append((filter_id, value))

    store.publisher = publish
    return store, published


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def hashes(*numbers: int, fork: int = 0) -> list[str]:
    return ["0x" + Header(n, fork if n > FORK_AFTER.get(fork, -1) else 0).hash.hex() for n in numbers]


def test_block_filter_returns_each_new_block_once_and_never_goes_back() -> None:
    clock = Clock()
    store, published = store_with_log(clock)
    filters, chain = Filters(store, FilterLimits(), clock), FakeBackend(5)

    async def scenario() -> None:
        fid = await filters.new_block_filter(chain)
        assert len(fid) == 34 and int(fid, 16) >= 0
        assert await filters.get_filter_changes(chain, fid) == []
        chain.number = 8
        assert await filters.get_filter_changes(chain, fid) == hashes(6, 7, 8)
        assert await filters.get_filter_changes(chain, fid) == []
        # Another replica that applied more moved the cursor past this replica's head.
        store.apply(fid, {**store.get(fid), "cursor": 10, "cursorHash": hashes(10)[0]})
        assert await filters.get_filter_changes(chain, fid) == []
        assert store.get(fid)["cursor"] == 10
        chain.number = 11
        assert await filters.get_filter_changes(chain, fid) == hashes(11)

    run(scenario())
    assert [value["cursor"] for _, value in published if value] == [5, 8, 11]  # empty polls publish nothing


def test_poll_results_are_capped_and_the_rest_comes_next() -> None:
    clock = Clock()
    store, _ = store_with_log(clock)
    filters, chain = Filters(store, FilterLimits(max_results=2), clock), FakeBackend(0)

    async def scenario() -> None:
        fid = await filters.new_block_filter(chain)
        chain.number = 5
        assert await filters.get_filter_changes(chain, fid) == hashes(1, 2)
        assert await filters.get_filter_changes(chain, fid) == hashes(3, 4)
        assert await filters.get_filter_changes(chain, fid) == hashes(5)

    run(scenario())


def test_unknown_and_expired_filters_get_geths_error() -> None:
    clock = Clock()
    store, published = store_with_log(clock)
    filters, chain = Filters(store, FilterLimits(timeout=300), clock), FakeBackend()

    async def scenario() -> None:
        with pytest.raises(ServerError) as unknown:
            await filters.get_filter_changes(chain, "0x" + "00" * 16)
        assert unknown.value.to_json() == {"code": -32000, "message": "filter not found"}
        fid = await filters.new_block_filter(chain)
        clock.now += 299
        assert await filters.get_filter_changes(chain, fid) == []  # a poll keeps it alive
        clock.now += 299
        assert await filters.get_filter_changes(chain, fid) == []
        clock.now += 300
        with pytest.raises(ServerError, match="filter not found"):
            await filters.get_filter_changes(chain, fid)
        assert store.get(fid) is None and published[-1] == (fid, None)  # the expiry is a tombstone
        assert await filters.uninstall(chain, fid) is False

    run(scenario())


def test_the_cluster_holds_at_most_max_filters() -> None:
    clock = Clock()
    store, _ = store_with_log(clock)
    filters, chain = Filters(store, FilterLimits(max_filters=2), clock), FakeBackend()

    async def scenario() -> None:
        first = await filters.new_block_filter(chain)
        await filters.new_block_filter(chain)
        with pytest.raises(LimitExceeded):
            await filters.new_block_filter(chain)
        assert await filters.uninstall(chain, first) is True
        await filters.new_block_filter(chain)

    run(scenario())


def test_installs_waiting_for_the_broker_count_against_the_bound() -> None:
    clock = Clock()
    store, _ = store_with_log(clock)
    acknowledged = asyncio.Event()
    publish = store.publisher
    assert publish is not None

    async def slow_broker(filter_id: str, value: Any) -> None:
        await acknowledged.wait()
        await publish(filter_id, value)

    store.publisher = slow_broker
    filters, chain = Filters(store, FilterLimits(max_filters=2), clock), FakeBackend()

    async def scenario() -> list[bool]:
        installs = [asyncio.create_task(filters.new_block_filter(chain)) for _ in range(3)]
        await asyncio.sleep(0.01)
        acknowledged.set()
        outcomes = await asyncio.gather(*installs, return_exceptions=True)
        return [isinstance(outcome, LimitExceeded) for outcome in outcomes]

    assert run(scenario()) == [False, False, True]
    assert len(store) == 2


def test_pending_cursor_is_a_position_per_transaction_partition() -> None:
    index = TxIndex()
    index.advance(0, 0)
    index.advance(1, 0)
    start = index.head()
    index.add(0, 0, b"a")
    index.add(1, 0, b"b")
    index.add(0, 1, b"c")
    found, cursor = index.since(start, 10)
    assert found == [b"a", b"c", b"b"] and cursor == {0: 2, 1: 1}
    assert index.since(cursor, 10) == ([], cursor)
    index.add(1, 1, b"d")
    found, capped = index.since(start, 2)
    assert found == [b"a", b"c"] and capped == {0: 2, 1: 0}
    assert index.since(capped, 2)[0] == [b"b", b"d"]


def test_block_filter_follows_a_reorg_from_the_fork_point() -> None:
    clock = Clock()
    store, _ = store_with_log(clock)
    filters, chain = Filters(store, FilterLimits(), clock), FakeBackend(5)

    async def scenario() -> None:
        fid = await filters.new_block_filter(chain)
        chain.number = 8
        assert await filters.get_filter_changes(chain, fid) == hashes(6, 7, 8)
        chain.fork, chain.number = 1, 9  # blocks 7 and 8 left the canonical chain; fork 1 has 7..9
        assert await filters.get_filter_changes(chain, fid) == hashes(7, 8, 9, fork=1)
        assert await filters.get_filter_changes(chain, fid) == []

    run(scenario())


def one_log_per_block(monkeypatch: pytest.MonkeyPatch) -> tuple[Filters, FakeBackend]:
    """Log filters over a fake chain at block 5 whose every block holds one log."""
    import filters.methods

    monkeypatch.setattr(filters.methods, "_block_logs", lambda backend, header, number, flt: iter(
        [{"blockNumber": hex(number), "blockHash": "0x" + header.hash.hex(), "removed": False}]))
    clock = Clock()
    store, _ = store_with_log(clock)
    return Filters(store, FilterLimits(), clock), FakeBackend(5)


def test_log_filter_returns_the_dropped_blocks_logs_as_removed_after_a_reorg(monkeypatch: pytest.MonkeyPatch) -> None:
    filters, chain = one_log_per_block(monkeypatch)

    async def scenario() -> None:
        fid = await filters.new_filter(chain, {})
        chain.number = 8
        assert [log["blockHash"] for log in await filters.get_filter_changes(chain, fid)] == hashes(6, 7, 8)
        chain.fork, chain.number = 1, 9
        changes = await filters.get_filter_changes(chain, fid)
        assert [(log["blockHash"], log["removed"]) for log in changes] == (
            [(h, True) for h in hashes(7, 8)] + [(h, False) for h in hashes(7, 8, 9, fork=1)])

    run(scenario())


def test_log_filter_returns_the_dropped_blocks_logs_as_removed_when_the_new_branch_is_shorter(monkeypatch: pytest.MonkeyPatch) -> None:
    filters, chain = one_log_per_block(monkeypatch)

    async def scenario() -> None:
        fid = await filters.new_filter(chain, {})
        chain.number = 8
        await filters.get_filter_changes(chain, fid)
        chain.fork, chain.number = 1, 7  # blocks 7 and 8 left; the new branch has only 7
        changes = await filters.get_filter_changes(chain, fid)
        assert [(log["blockHash"], log["removed"]) for log in changes] == (
            [(h, True) for h in hashes(7, 8)] + [(h, False) for h in hashes(7, fork=1)])

    run(scenario())


@pytest.mark.parametrize("criteria", ["", 5, [], {"address": 5}, {"topics": [5]}, {"fromBlock": "1"}])
async def test_bad_filter_criteria_are_invalid_params_not_a_crash(criteria: Any) -> None:
    db = AtomicDB()
    init_dev_chain(db)
    store, published = store_with_log(Clock())
    service = RpcService(db, extra_methods=[Filters(store).methods()])
    response = orjson.loads(await service.handle_body(orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "eth_newFilter", "params": [criteria]})) or b"null")
    assert response["error"]["code"] == -32602 and response["error"]["message"].startswith("invalid argument 0: ")
    assert published == []


def test_a_deeply_nested_filter_record_is_refused_before_any_recursive_parse() -> None:
    with pytest.raises(ValueError, match="nested deeper"):
        decode(b"[" * 70_000)


def test_polls_and_uninstalls_of_unknown_filters_leave_no_lock_behind() -> None:
    clock = Clock()
    store, _ = store_with_log(clock)
    filters, chain = Filters(store, FilterLimits(), clock), FakeBackend(5)

    async def scenario() -> None:
        for n in range(100):
            made_up = f"0x{n:032x}"
            with pytest.raises(ServerError):
                await filters.get_filter_changes(chain, made_up)
            assert await filters.uninstall(chain, made_up) is False

    run(scenario())
    assert store.locks_in_use == 0


def test_a_filter_lock_serialises_calls_and_is_forgotten_with_the_last_one() -> None:
    store, _ = store_with_log(Clock())
    order: list[str] = []

    async def hold(name: str) -> None:
        async with store.lock("0x01"):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    async def scenario() -> None:
        first = asyncio.ensure_future(hold("first"))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(hold("second"))
        await asyncio.sleep(0)
        assert store.locks_in_use == 1
        await asyncio.gather(first, second)

    run(scenario())
    assert order == ["first in", "first out", "second in", "second out"]
    assert store.locks_in_use == 0


def test_the_transaction_index_holds_at_most_twice_its_size_per_partition() -> None:
    index = TxIndex(max_per_partition=10)
    for offset in range(1000):
        index.add(0, offset, offset.to_bytes(32, "big"))
    assert index.longest() <= 20
    assert index.since({0: 990}, 100)[0] == [n.to_bytes(32, "big") for n in range(990, 1000)]
