"""A call naming a block a little ahead of the head waits for it, bounded in blocks and time."""

from __future__ import annotations

import asyncio
import time

from eth.db.atomic import AtomicDB

from aiohttp import ClientSession

from chain.dev import DevMiner, init_dev_chain
from rpc.blockwait import HEAD_HEADER
from rpc.limits import RpcLimits
from rpc.service import RpcService
from tests.rpc.conftest import caller, serve


def dev_db() -> AtomicDB:
    db = AtomicDB()
    init_dev_chain(db)
    return db


def waiting_service(blocks: int = 5, seconds: float = 2.0, db: AtomicDB | None = None) -> tuple[RpcService, DevMiner]:
    db = db if db is not None else dev_db()
    return RpcService(db, limits=RpcLimits(block_wait_blocks=blocks, block_wait_seconds=seconds)), DevMiner(db)


async def mine_soon(service: RpcService, miner: DevMiner, count: int = 1) -> None:
    """What the apply agent does: a block lands in the database, then the service hears of it."""
    for _ in range(count):
        await asyncio.sleep(0.05)
        miner.mine([])
        service.invalidate()


async def test_a_block_number_just_past_the_head_is_answered_once_it_arrives() -> None:
    service, miner = waiting_service()
    call = caller(service)
    response, _ = await asyncio.gather(call("eth_getBlockByNumber", "0x2", False), mine_soon(service, miner, 2))
    assert response["result"]["number"] == "0x2"
    assert service.block_wait.waited == 1


async def test_a_state_read_at_a_block_just_past_the_head_waits_too() -> None:
    service, miner = waiting_service()
    call = caller(service)
    response, _ = await asyncio.gather(call("eth_getBalance", "0x" + "00" * 20, "0x1"), mine_soon(service, miner))
    assert response["result"] == "0x0"


async def test_a_block_that_never_comes_is_not_found_after_the_bound() -> None:
    service, _ = waiting_service(seconds=0.2)
    started = time.monotonic()
    response = await caller(service)("eth_getBlockByNumber", "0x1", False)
    assert response["result"] is None
    assert 0.2 <= time.monotonic() - started < 1.0


async def test_a_block_far_past_the_head_is_not_waited_for() -> None:
    service, _ = waiting_service(blocks=5, seconds=5.0)
    started = time.monotonic()
    response = await caller(service)("eth_getBlockByNumber", "0x6", False)
    assert response["result"] is None
    assert time.monotonic() - started < 0.5
    assert service.block_wait.waited == 0


async def test_an_unknown_block_hash_waits_and_is_answered_once_it_arrives() -> None:
    service, miner = waiting_service()
    elsewhere = dev_db()  # the same genesis: the same block comes out of the same inputs
    block = DevMiner(elsewhere).mine([], timestamp=2_000_000_000).block

    async def arrive() -> None:
        await asyncio.sleep(0.05)
        miner.mine([], timestamp=2_000_000_000)
        service.invalidate()

    response, _ = await asyncio.gather(call_by_hash(service, block.hash), arrive())
    assert response["result"]["hash"] == "0x" + block.hash.hex()


async def call_by_hash(service: RpcService, block_hash: bytes) -> dict:
    return await caller(service)("eth_getBlockByHash", "0x" + block_hash.hex(), False)  # type: ignore[no-any-return]


async def test_a_tag_never_waits() -> None:
    service, _ = waiting_service(seconds=5.0)
    started = time.monotonic()
    await caller(service)("eth_getBlockByNumber", "latest", False)
    assert time.monotonic() - started < 0.5 and service.block_wait.waited == 0


async def test_http_responses_carry_the_replicas_head() -> None:
    service, miner = waiting_service()
    miner.mine([])
    miner.mine([])
    runner, url = await serve(service)
    try:
        async with ClientSession() as session:
            async with session.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}) as response:
                assert response.headers[HEAD_HEADER] == "2"
    finally:
        await runner.cleanup()


async def test_made_up_hashes_hold_at_most_a_quarter_of_the_in_flight_bound() -> None:
    db = dev_db()
    service = RpcService(db, limits=RpcLimits(block_wait_blocks=5, block_wait_seconds=0.5, max_in_flight=8))
    started = time.monotonic()
    answers = await asyncio.gather(*(call_by_hash(service, bytes([n]) * 32) for n in range(1, 7)))
    assert all(answer["result"] is None for answer in answers)
    assert service.block_wait.waited == 2 and service.block_wait.waiting == 0
    assert time.monotonic() - started < 1.5
