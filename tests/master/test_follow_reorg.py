"""Reorgs as the follower sees them: the upstream's chain changes below the master's head.

Two dev chains share their first blocks and then diverge; each is served by this
project's own RPC, and the follower's upstream moves from one to the other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.db.schema import SchemaV1
from eth_account import Account
from eth_typing import BlockNumber, Hash32
from eth_utils import keccak

from chain.dev import DevMiner, dev_accounts, dev_genesis_spec, init_dev_chain
from master.follow import Follower, FollowStopped
from master.upstream import Upstream
from rpc.service import RpcService
from tests.rpc.conftest import serve

SHARED_BLOCKS = 2
BEEF = "0x000000000000000000000000000000000000bEEF"


def transfer(nonce: int, value: int) -> bytes:
    tx = {"chainId": 1337, "nonce": nonce, "to": BEEF, "value": value, "gas": 21_000, "type": 2,
          "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    return bytes(Account.sign_transaction(tx, dev_accounts()[0][1]).raw_transaction)


def dev_chain(blocks_after_fork: int, timestamp_step: int) -> AtomicDB:
    """Blocks 1..SHARED_BLOCKS identical on every such chain, then ``blocks_after_fork`` of its own (one transfer each)."""
    db = AtomicDB()
    init_dev_chain(db)
    miner = DevMiner(db)
    for number in range(1, SHARED_BLOCKS + 1):
        miner.mine([transfer(number - 1, 1)], timestamp=number)
    for offset in range(blocks_after_fork):
        nonce = SHARED_BLOCKS + offset
        miner.mine([transfer(nonce, timestamp_step)], timestamp=(SHARED_BLOCKS + 1 + offset) * timestamp_step)
    return db


@pytest.fixture
async def two_upstreams() -> AsyncIterator[tuple[str, str, AtomicDB, AtomicDB]]:
    old, new = dev_chain(3, 10), dev_chain(2, 20)
    runners: list[web.AppRunner] = []
    urls = []
    for db in (old, new):
        runner, url = await serve(RpcService(db))
        runners.append(runner)
        urls.append(url)
    yield urls[0], urls[1], old, new
    for runner in runners:
        await runner.cleanup()


def hashes(db: AtomicDB) -> list[bytes]:
    chaindb = ChainDB(db)
    return [chaindb.get_canonical_block_hash(BlockNumber(n)) for n in range(chaindb.get_canonical_head().block_number + 1)]


async def test_a_shorter_branch_replaces_ours_with_canonical_lookups_rewritten(two_upstreams: tuple[str, str, AtomicDB, AtomicDB]) -> None:
    old_url, new_url, old, new = two_upstreams
    db = AtomicDB()
    async with Upstream(old_url) as upstream:
        follower = Follower(db, upstream, dev_genesis_spec())
        await follower.initialise()
        await follower.catch_up()
        assert hashes(db) == hashes(old)
        dropped = [Hash32(keccak(transfer(nonce, 10))) for nonce in range(SHARED_BLOCKS, SHARED_BLOCKS + 3)]
        assert all(SchemaV1.make_transaction_hash_to_block_lookup_key(h) in db for h in dropped)
        upstream.http_url = new_url
        await follower.catch_up()
    assert hashes(db) == hashes(new)
    assert len(hashes(db)) == SHARED_BLOCKS + 3
    assert all(SchemaV1.make_transaction_hash_to_block_lookup_key(h) not in db for h in dropped)
    assert follower.metrics.reorgs._value.get() == 1  # type: ignore[attr-defined]


async def test_a_reorg_deeper_than_the_limit_stops_following_and_keeps_our_chain(two_upstreams: tuple[str, str, AtomicDB, AtomicDB]) -> None:
    old_url, new_url, old, _ = two_upstreams
    db = AtomicDB()
    async with Upstream(old_url) as upstream:
        follower = Follower(db, upstream, dev_genesis_spec(), max_reorg_depth=2)
        await follower.initialise()
        await follower.catch_up()
        upstream.http_url = new_url
        with pytest.raises(FollowStopped, match="replaced more than 2 blocks below our head 5"):
            await follower.catch_up()
    assert hashes(db) == hashes(old)
