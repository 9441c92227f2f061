"""The follower against a real JSON-RPC upstream: this project's own RPC serving the rpc-compat chain.

That chain has every fork to Prague (proof of work with uncles, the merge by total
difficulty, time forks, blobs, EIP-7702), so following it exercises the fork schedule
growing block by block, both ways of fetching blocks, and the header comparison.
"""

from __future__ import annotations

from typing import Any

import pytest
import rlp
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth_typing import BlockNumber

from chain.config import read_config
from chain.genesis import load_genesis
from chain.head import settled_hash
from chain.live import HeaderMismatch
from master.follow import Follower, FollowStopped, progress_line
from master.upstream import Upstream
from tests.rpc.compat import SUITE
from tests.rpc.conftest import compat_db, compat_service, compat_url  # noqa: F401  (the served rpc-compat chain)


def canonical_hashes(db: Any) -> list[bytes]:
    chaindb = ChainDB(db)
    head = chaindb.get_canonical_head().block_number
    return [chaindb.get_canonical_block_hash(BlockNumber(n)) for n in range(head + 1)]


async def follow_once(upstream: Upstream, db: AtomicDB) -> Follower:
    follower = Follower(db, upstream, load_genesis(SUITE / "genesis.json"))
    await follower.initialise()
    await follower.catch_up()
    return follower


async def test_following_raw_blocks_reproduces_the_upstream_chain(compat_url: str, compat_db: AtomicDB) -> None:
    db = AtomicDB()
    async with Upstream(compat_url) as upstream:
        await follow_once(upstream, db)
        assert upstream.raw_blocks_offered is True
    assert canonical_hashes(db) == canonical_hashes(compat_db)
    assert read_config(db) == read_config(compat_db)


async def test_the_blocks_the_upstream_calls_safe_and_finalized_are_stored_for_replicas(compat_url: str) -> None:
    db = AtomicDB()
    async with Upstream(compat_url) as upstream:
        follower = await follow_once(upstream, db)
        finalized = await upstream.block("finalized")
    assert finalized is not None
    assert settled_hash(db, "finalized") == bytes.fromhex(finalized["hash"][2:]) == follower.head().hash
    assert settled_hash(db, "safe") == follower.head().hash


async def test_following_rebuilt_blocks_reproduces_the_upstream_chain(compat_url: str, compat_db: AtomicDB) -> None:
    db = AtomicDB()
    async with Upstream(compat_url) as upstream:
        upstream.raw_blocks_offered = False
        await follow_once(upstream, db)
    assert canonical_hashes(db) == canonical_hashes(compat_db)


async def test_a_restarted_follower_resumes_from_its_head(compat_url: str, compat_db: AtomicDB) -> None:
    db = AtomicDB()
    async with Upstream(compat_url) as upstream:
        follower = Follower(db, upstream, load_genesis(SUITE / "genesis.json"), batch=1)
        await follower.initialise()
        follower.extend([raw for n in range(1, 11) if (raw := await upstream.raw_block(n))])
        assert follower.head().block_number == 10
        await follow_once(upstream, db)
    assert canonical_hashes(db) == canonical_hashes(compat_db)


class TamperedUpstream(Upstream):
    """Announces block ``number`` with another state root (re-hashed, so it still links to its parent)."""

    def __init__(self, url: str, number: int) -> None:
        super().__init__(url)
        self.number = number

    async def raw_block(self, number: int) -> bytes | None:
        raw = await super().raw_block(number)
        if raw is None or number != self.number:
            return raw
        header, *body = rlp.decode(raw)
        header[3] = b"\x11" * 32
        return bytes(rlp.encode([header, *body]))


async def test_a_block_that_does_not_reproduce_stops_following_and_writes_nothing(compat_url: str) -> None:
    db = AtomicDB()
    async with TamperedUpstream(compat_url, 5) as upstream:
        follower = Follower(db, upstream, load_genesis(SUITE / "genesis.json"))
        await follower.initialise()
        with pytest.raises(HeaderMismatch) as raised:
            await follower.catch_up()
    assert (raised.value.number, raised.value.field, raised.value.theirs) == (5, "state_root", b"\x11" * 32)
    assert follower.head().block_number == 4
    assert "block 5: state_root computed 0x" in str(raised.value)


async def test_an_upstream_on_another_chain_id_is_refused(compat_url: str) -> None:
    genesis = load_genesis(SUITE / "genesis.json")
    async with Upstream(compat_url) as upstream:
        follower = Follower(AtomicDB(), upstream, genesis.__class__(**{**genesis.__dict__, "chain_id": 7}))
        with pytest.raises(FollowStopped, match="chain id"):
            await follower.initialise()


def test_the_progress_line_shows_a_bar_and_rates() -> None:
    assert progress_line(50, 200, 12.5, 3.25, width=8) == "block 50 of 200 [##......]  25.0%  12.5 blocks/s  3.2 Mgas/s"
