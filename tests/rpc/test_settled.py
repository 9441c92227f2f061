"""safe and finalized: the blocks the master stored as such while they are canonical, else the head."""

from __future__ import annotations

from typing import Iterator

import pytest
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth_typing import BlockNumber

from chain.head import SETTLED_KEYS
from chain.importer import import_chain
from rpc.service import RpcService
from tests.rpc.compat import SUITE
from tests.rpc.conftest import Call, caller


@pytest.fixture
def db() -> Iterator[AtomicDB]:
    db = AtomicDB()
    import_chain(db, SUITE / "genesis.json", SUITE / "chain.rlp")
    yield db


def canonical_hash(db: AtomicDB, number: int) -> bytes:
    return ChainDB(db).get_canonical_block_hash(BlockNumber(number))


def call_on(db: AtomicDB) -> Call:
    """``await call(method, *params)`` -> the result of the call against ``db``."""
    call = caller(RpcService(db))

    async def result(method: str, *params: object) -> object:
        return (await call(method, *params))["result"]

    return result


async def test_unmarked_safe_and_finalized_answer_the_head(db: AtomicDB) -> None:
    call = call_on(db)
    head = await call("eth_blockNumber")
    assert (await call("eth_getBlockByNumber", "safe", False))["number"] == head
    assert (await call("eth_getBlockByNumber", "finalized", False))["number"] == head


async def test_marked_blocks_answer_safe_and_finalized(db: AtomicDB) -> None:
    db[SETTLED_KEYS["safe"]] = canonical_hash(db, 30)
    db[SETTLED_KEYS["finalized"]] = canonical_hash(db, 20)
    call = call_on(db)
    assert (await call("eth_getBlockByNumber", "safe", False))["number"] == hex(30)
    assert (await call("eth_getBlockByNumber", "finalized", False))["number"] == hex(20)
    assert await call("eth_getBalance", "0x" + "00" * 20, "finalized") == await call("eth_getBalance", "0x" + "00" * 20, hex(20))
    logs = await call("eth_getLogs", {"fromBlock": "0x0", "toBlock": "finalized"})
    assert logs and all(int(entry["blockNumber"], 16) <= 20 for entry in logs)


async def test_a_marked_block_no_longer_canonical_answers_the_head(db: AtomicDB) -> None:
    db[SETTLED_KEYS["finalized"]] = b"\x11" * 32
    call = call_on(db)
    assert (await call("eth_getBlockByNumber", "finalized", False))["number"] == await call("eth_blockNumber")
