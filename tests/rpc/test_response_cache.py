"""The response cache: repeated questions answered from memory, never about a chain no longer canonical."""

from __future__ import annotations

import asyncio
import json
import os
import tracemalloc
from typing import Any

import pytest
from eth.db.atomic import AtomicDB
import orjson
from eth_account import Account

from chain.dev import DEV_CHAIN_ID, DEV_PRIVATE_KEYS, DevMiner, init_dev_chain
from rpc.dispatch import Method
from rpc.errors import RpcError
from rpc.limits import RpcLimits
from rpc.response_cache import ResponseCache
from rpc.service import RpcService
from tests.rpc.conftest import caller

RECIPIENT = "0x000000000000000000000000000000000000dead"
HEAD = b"\x01" * 32


def transfer(nonce: int, value: int) -> bytes:
    """A signed EIP-1559 transfer of ``value`` wei from the first dev account to RECIPIENT."""
    tx: dict[str, Any] = dict(nonce=nonce, to=bytes.fromhex(RECIPIENT[2:]), value=value, gas=21_000, maxFeePerGas=20 * 10**9,
                              maxPriorityFeePerGas=10**9, chainId=DEV_CHAIN_ID)
    return bytes(Account.from_key(DEV_PRIVATE_KEYS[0]).sign_transaction(tx).raw_transaction)


def dev_chain() -> AtomicDB:
    db = AtomicDB()
    init_dev_chain(db)
    return db


def copy_of(db: AtomicDB) -> AtomicDB:
    copy = AtomicDB()
    copy.wrapped_db.kv_store.update(db.wrapped_db.kv_store)  # type: ignore[attr-defined]
    return copy


def replay_writes(source: AtomicDB, target: AtomicDB) -> None:
    """What a replica sees of a reorg on its master: the other branch's keys written over its own."""
    for key, value in source.wrapped_db.kv_store.items():  # type: ignore[attr-defined]
        target[key] = value


def rival_blocks() -> tuple[AtomicDB, AtomicDB]:
    """Two chains whose block 1 differs: 5 wei to RECIPIENT in the first, 9 in the other."""
    db = dev_chain()
    other_branch = copy_of(db)
    DevMiner(db).mine([transfer(0, 5)], timestamp=2_000_000_000)
    DevMiner(other_branch).mine([transfer(0, 9)], timestamp=2_000_000_001)
    return db, other_branch


async def test_a_repeated_question_is_answered_from_memory() -> None:
    db = dev_chain()
    DevMiner(db).mine([transfer(0, 5)])
    service = RpcService(db)
    call = caller(service)
    first = await call("eth_getBalance", RECIPIENT, "latest")
    second = await call("eth_getBalance", RECIPIENT, "latest", request_id=7)
    assert second == {**first, "id": 7}
    assert service.responses.hits == 1


async def test_latest_follows_the_head_when_a_block_is_written() -> None:
    db = dev_chain()
    service = RpcService(db)
    call = caller(service)
    assert (await call("eth_getBalance", RECIPIENT, "latest"))["result"] == "0x0"
    assert (await call("eth_blockNumber"))["result"] == "0x0"
    DevMiner(db).mine([transfer(0, 5)])
    service.invalidate()
    assert (await call("eth_getBalance", RECIPIENT, "latest"))["result"] == "0x5"
    assert (await call("eth_blockNumber"))["result"] == "0x1"


async def test_a_block_number_follows_a_reorg_at_the_same_height() -> None:
    db, other_branch = rival_blocks()
    service = RpcService(db)
    call = caller(service)
    before = (await call("eth_getBlockByNumber", "0x1", False))["result"]
    assert (await call("eth_getBalance", RECIPIENT, "0x1"))["result"] == "0x5"

    replay_writes(other_branch, db)
    service.invalidate()

    after = (await call("eth_getBlockByNumber", "0x1", False))["result"]
    assert after["hash"] != before["hash"] and after["timestamp"] == hex(2_000_000_001)
    assert (await call("eth_getBalance", RECIPIENT, "0x1"))["result"] == "0x9"
    assert (await call("eth_getBalance", RECIPIENT, "latest"))["result"] == "0x9"


async def test_a_receipt_of_a_transaction_reorged_out_is_gone() -> None:
    db = dev_chain()
    other_branch = copy_of(db)
    mined = DevMiner(db).mine([transfer(0, 5)], timestamp=2_000_000_000)
    DevMiner(other_branch).mine([], timestamp=2_000_000_001)
    service = RpcService(db)
    call = caller(service)
    tx_hash = "0x" + mined.included[0].tx_hash.hex()  # type: ignore[union-attr]
    assert (await call("eth_getTransactionReceipt", tx_hash))["result"] is not None

    replay_writes(other_branch, db)
    service.invalidate()

    assert (await call("eth_getTransactionReceipt", tx_hash))["result"] is None


async def test_pending_nonces_are_never_cached() -> None:
    service = RpcService(dev_chain())
    call = caller(service)
    await call("eth_getTransactionCount", RECIPIENT, "pending")
    await call("eth_getTransactionCount", RECIPIENT, "pending")
    assert service.responses.hits == 0 and len(service.responses) == 0


async def test_errors_are_not_cached() -> None:
    service = RpcService(dev_chain())
    call = caller(service)
    response = await call("eth_getBalance", "0x12", "latest")
    assert "error" in response
    assert len(service.responses) == 0


async def test_a_zero_byte_bound_turns_the_cache_off() -> None:
    service = RpcService(dev_chain(), limits=RpcLimits(response_cache_bytes=0))
    call = caller(service)
    await call("eth_blockNumber")
    await call("eth_blockNumber")
    assert service.responses.hits == 0 and len(service.responses) == 0


def test_the_cache_stays_within_its_byte_bound_evicting_the_least_recent() -> None:
    cache = ResponseCache(max_bytes=8_000)
    keys = [cache.key(HEAD, "eth_getBalance", [f"0x{i:040x}", "latest"]) for i in range(40)]
    for key in keys:
        assert key is not None
        cache.put(key, b'"0x1"' * 50)
    assert cache.size <= 8_000
    assert cache.get(keys[-1]) is not None  # type: ignore[arg-type]
    assert cache.get(keys[0]) is None  # type: ignore[arg-type]


def test_an_answer_larger_than_an_eighth_of_the_bound_is_not_kept() -> None:
    cache = ResponseCache(max_bytes=8_000)
    key = cache.key(HEAD, "eth_getLogs", [{}])
    assert key is not None
    cache.put(key, b"x" * 1_001)
    assert len(cache) == 0


@pytest.mark.parametrize("method", ["eth_getTransactionByHash", "eth_getFilterChanges", "txpool_content",
                                    "eth_syncing", "eth_sendRawTransaction"])
def test_methods_that_read_beyond_the_head_have_no_key(method: str) -> None:
    assert ResponseCache(1_000_000).key(HEAD, method, []) is None


def test_object_parameters_key_alike_whatever_their_member_order() -> None:
    cache = ResponseCache(1_000_000)
    assert (cache.key(HEAD, "eth_call", [{"to": "0x1", "data": "0x2"}, "latest"])
            == cache.key(HEAD, "eth_call", [{"data": "0x2", "to": "0x1"}, "latest"]))


def counting_chain_id(service: RpcService, calls: list[int], fail: bool = False) -> None:
    """Replace eth_chainId with a slow handler that counts its runs (and fails when asked)."""

    async def chain_id(backend: object) -> str:
        calls.append(1)
        await asyncio.sleep(0.05)
        if fail:
            raise RpcError("execution reverted", code=3)
        return "0x539"

    service.dispatcher.methods["eth_chainId"] = Method(chain_id)


async def test_the_same_question_asked_at_once_is_computed_once() -> None:
    service, calls = RpcService(dev_chain()), list[int]()
    counting_chain_id(service, calls)
    call = caller(service)
    answers = await asyncio.gather(*(call("eth_chainId", request_id=i) for i in range(5)))
    assert [answer["result"] for answer in answers] == ["0x539"] * 5
    assert [answer["id"] for answer in answers] == list(range(5))
    assert len(calls) == 1


async def test_a_failure_computed_once_reaches_every_caller_and_is_not_kept() -> None:
    service, calls = RpcService(dev_chain()), list[int]()
    counting_chain_id(service, calls, fail=True)
    call = caller(service)
    answers = await asyncio.gather(*(call("eth_chainId") for _ in range(3)))
    assert all(answer["error"]["code"] == 3 for answer in answers)
    assert len(calls) == 1 and len(service.responses) == 0


async def test_an_answer_about_a_named_block_outlives_the_head() -> None:
    db = dev_chain()
    miner = DevMiner(db)
    miner.mine([transfer(0, 5)])
    service = RpcService(db)
    call = caller(service)
    first = await call("eth_getBalance", RECIPIENT, "0x1")
    miner.mine([transfer(1, 7)])
    service.invalidate()
    assert await call("eth_getBalance", RECIPIENT, "0x1") == first
    assert service.responses.hits == 1
    assert (await call("eth_getBalance", RECIPIENT, "latest"))["result"] == "0xc"


async def test_a_receipt_is_answered_from_memory_after_the_head_moves() -> None:
    db = dev_chain()
    miner = DevMiner(db)
    mined = miner.mine([transfer(0, 5)])
    service = RpcService(db)
    call = caller(service)
    tx_hash = "0x" + mined.included[0].tx_hash.hex()  # type: ignore[union-attr]
    first = await call("eth_getTransactionReceipt", tx_hash)
    miner.mine([])
    service.invalidate()
    assert await call("eth_getTransactionReceipt", tx_hash) == first
    assert service.responses.hits == 1


async def test_a_block_named_by_hash_that_leaves_the_canonical_chain_is_asked_again() -> None:
    db, other_branch = rival_blocks()
    service = RpcService(db)
    call = caller(service)
    block_hash = (await call("eth_getBlockByNumber", "0x1", False))["result"]["hash"]
    named = {"blockHash": block_hash, "requireCanonical": True}
    assert (await call("eth_getBalance", RECIPIENT, named))["result"] == "0x5"

    replay_writes(other_branch, db)
    service.invalidate()

    assert (await call("eth_getBalance", RECIPIENT, named))["error"]["message"] == "hash is not currently canonical"
    assert (await call("eth_getBalance", RECIPIENT, {"blockHash": block_hash}))["result"] == "0x5"


def test_the_byte_bound_holds_the_memory_the_entries_really_take() -> None:
    """Filled as the dispatcher fills it (a head hash read per request, the method name parsed from
    the body, orjson's encodings of parameters and answers), the cache holds no more than its bound."""
    cache = ResponseCache(1 << 20)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(20_000):
            key = cache.key(os.urandom(32), json.loads('"eth_getBalance"'), ["0x" + os.urandom(20).hex(), "latest"])
            assert key is not None
            cache.put(key, orjson.dumps(hex(n)))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache.size <= cache.max_bytes
    assert held <= cache.max_bytes * 1.05
