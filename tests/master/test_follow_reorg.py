"""Reorgs as the follower sees them: the upstream's chain changes below the master's head.

Two dev chains share their first blocks and then diverge; each is served by this
project's own RPC, and the follower's upstream moves from one to the other. Where
the two branches reach Osaka's time at other heights, the new branch's blocks must
run under their own fork, not the one the dropped branch activated.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.db.schema import SchemaV1
from eth_account import Account
from eth_typing import BlockNumber, Hash32
from eth_utils import keccak

from chain.config import CONFIG_KEY, read_config, write_config
from chain.dev import DevMiner, dev_accounts, dev_genesis_spec, init_dev_chain
from chain.forks import BlockSummary, chain_config_for
from chain.genesis import GenesisSpec
from chain.osaka import TRANSACTION_GAS_LIMIT_CAP
from cluster.record import decode_record
from master import journal
from master.capture import CaptureDB
from master.follow import Follower, FollowStopped
from master.upstream import Upstream
from rpc.service import RpcService
from storage.leveldb import LevelDB
from tests.rpc.conftest import serve

SHARED_BLOCKS = 2
BEEF = "0x000000000000000000000000000000000000bEEF"


def transfer(nonce: int, value: int, gas: int = 21_000) -> bytes:
    tx = {"chainId": 1337, "nonce": nonce, "to": BEEF, "value": value, "gas": gas, "type": 2,
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


@asynccontextmanager
async def serving(old: AtomicDB, new: AtomicDB) -> AsyncIterator[tuple[str, str]]:
    """The URLs of this project's RPC serving ``old`` and ``new``."""
    runners: list[web.AppRunner] = []
    urls = []
    for db in (old, new):
        runner, url = await serve(RpcService(db))
        runners.append(runner)
        urls.append(url)
    try:
        yield urls[0], urls[1]
    finally:
        for runner in runners:
            await runner.cleanup()


@pytest.fixture
async def two_upstreams() -> AsyncIterator[tuple[str, str, AtomicDB, AtomicDB]]:
    old, new = dev_chain(3, 10), dev_chain(2, 20)
    async with serving(old, new) as (old_url, new_url):
        yield old_url, new_url, old, new


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


OSAKA_TIME = 100


def osaka_genesis() -> GenesisSpec:
    """The dev genesis on Prague, with Osaka from time ``OSAKA_TIME``."""
    spec = dev_genesis_spec(fork="prague")
    return replace(spec, time_forks=(*spec.time_forks, ("osaka", OSAKA_TIME)))


def osaka_chain(timestamps: Sequence[int]) -> AtomicDB:
    """A dev chain of ``osaka_genesis``: the shared blocks, then blocks of ``timestamps``, one transfer each.

    A Prague block's transfer asks for more gas than Osaka's cap (EIP-7825), so it
    is valid only under the fork its timestamp selects.
    """
    spec = osaka_genesis()
    db = AtomicDB()
    init_dev_chain(db, fork="prague")
    stamps = [*range(1, SHARED_BLOCKS + 1), *timestamps]
    write_config(db, chain_config_for(spec, [BlockSummary(n, 0, t) for n, t in enumerate(stamps, start=1)]))
    miner = DevMiner(db)
    for nonce, timestamp in enumerate(stamps):
        gas = 21_000 if timestamp >= OSAKA_TIME else TRANSACTION_GAS_LIMIT_CAP + 1
        assert miner.mine([transfer(nonce, 1, gas)], timestamp=timestamp).included
    return db


@pytest.mark.parametrize(("old_stamps", "new_stamps"), [
    pytest.param((OSAKA_TIME, OSAKA_TIME + 1, OSAKA_TIME + 2), (OSAKA_TIME - 1, OSAKA_TIME), id="later"),
    pytest.param((OSAKA_TIME - 2, OSAKA_TIME - 1, OSAKA_TIME), (OSAKA_TIME, OSAKA_TIME + 1), id="earlier"),
    pytest.param((OSAKA_TIME - 1, OSAKA_TIME, OSAKA_TIME + 1), (OSAKA_TIME - 2, OSAKA_TIME - 1), id="never"),
])
async def test_a_reorg_across_a_time_fork_activation_activates_it_where_the_new_branch_reaches_it(
    old_stamps: tuple[int, ...], new_stamps: tuple[int, ...], caplog: pytest.LogCaptureFixture,
) -> None:
    old, new = osaka_chain(old_stamps), osaka_chain(new_stamps)
    old_activation = read_config(old).forks[-1]
    db = AtomicDB()
    async with serving(old, new) as (old_url, new_url), Upstream(old_url) as upstream:
        follower = Follower(db, upstream, osaka_genesis())
        await follower.initialise()
        await follower.catch_up()
        assert read_config(db) == read_config(old)
        upstream.http_url = new_url
        with caplog.at_level(logging.WARNING, logger="ethercattle.follow"):
            await follower.catch_up()
    assert hashes(db) == hashes(new)
    assert read_config(db) == read_config(new)
    assert f"reorg to block {SHARED_BLOCKS} rolls back osaka from block {old_activation[0]}" in caplog.text


async def test_the_rolled_back_schedule_travels_in_the_reorg_s_one_captured_record(tmp_path: Path) -> None:
    old, new = osaka_chain((OSAKA_TIME, OSAKA_TIME + 1, OSAKA_TIME + 2)), osaka_chain((OSAKA_TIME - 1, OSAKA_TIME))
    with LevelDB(tmp_path / "chaindb") as leveldb:
        db = CaptureDB(leveldb)
        async with serving(old, new) as (old_url, new_url), Upstream(old_url) as upstream:
            follower = Follower(db, upstream, osaka_genesis())
            await follower.initialise()
            await follower.catch_up()
            before = journal.last_sequence(leveldb)
            upstream.http_url = new_url
            await follower.catch_up()
        _, encoded = next(journal.pending(leveldb, after=before))  # the reorg's; the settled marks follow in their own
        puts = dict(decode_record(encoded).operations)
        assert puts[CONFIG_KEY] == leveldb[CONFIG_KEY] == read_config(new).to_json().encode()
        assert puts[SchemaV1.make_canonical_head_hash_lookup_key()] == hashes(new)[-1]
