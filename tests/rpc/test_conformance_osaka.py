"""The rpc-compat Osaka suite (osaka-2026-07: Osaka, BPO1, BPO2), strict, over real HTTP.

The chain is imported into a real LevelDB, every block validated by the Osaka VM,
and served by an in-process ``RpcService`` as a replica serves it. Every case of a
method ethercattle serves must answer exactly as geth, error messages included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from chain.importer import import_chain
from rpc.dispatch import merge_tables
from rpc.limits import RpcLimits
from rpc.service import NAMESPACES, RpcService
from storage.leveldb import LevelDB
from tests.rpc.compat import SUITE, CompatCase, load_suite, replay_case
from tests.rpc.conftest import RecordingSink, serve

OSAKA_SUITE = SUITE.parent / "osaka-2026-07"

SERVED = merge_tables(*NAMESPACES)
"""The methods ethercattle serves; the suite's cases for others (testing_buildBlockV1, a block
builder's method) are not a replica's to answer."""

UNHURRIED = RpcLimits(call_timeout_seconds=60, request_timeout_seconds=60)
"""The suite checks answers, not speed: its longest eth_simulateV1 cases (a hundred and more
simulated blocks, or a gas-burning loop) take about 1 s here and must not meet the 5 s
default time limits on a loaded CI machine."""

SERVED_CASES = [case for case in load_suite(OSAKA_SUITE) if case.method in SERVED]
"""Every case of a served method: these must pass strictly, here and end to end."""


@pytest.fixture(scope="module")
def osaka_db(tmp_path_factory: pytest.TempPathFactory) -> LevelDB:
    db = LevelDB(Path(tmp_path_factory.mktemp("osaka")) / "chaindb")
    import_chain(db, OSAKA_SUITE / "genesis.json", OSAKA_SUITE / "chain.rlp")
    return db


@pytest.fixture
async def osaka_url(osaka_db: LevelDB) -> AsyncIterator[str]:
    runner, url = await serve(RpcService(osaka_db, tx_sink=RecordingSink(), limits=UNHURRIED))
    try:
        yield url
    finally:
        await runner.cleanup()


def test_osaka_chain_imports_every_block(tmp_path: Path) -> None:
    with LevelDB(tmp_path / "chaindb") as db:
        result = import_chain(db, OSAKA_SUITE / "genesis.json", OSAKA_SUITE / "chain.rlp")
    assert (result.imported, result.head_number) == (54, 54)
    assert result.config.forks[-3:] == ((48, "osaka"), (51, "bpo1"), (54, "bpo2"))


def test_served_methods_have_cases() -> None:
    methods = {case.method for case in SERVED_CASES}
    assert methods >= {"eth_config", "eth_blobBaseFee", "eth_call", "eth_sendRawTransaction"}


@pytest.mark.parametrize("case", SERVED_CASES, ids=[case.id for case in SERVED_CASES])
async def test_osaka_case_answers_as_geth_strictly(case: CompatCase, osaka_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        result = await replay_case(session, osaka_url, case)
    assert result.passed and result.strict, result.detail or "error message differs from geth's"
