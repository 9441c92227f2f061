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
from rpc.service import NAMESPACES, RpcService
from storage.leveldb import LevelDB
from tests.rpc.compat import SUITE, CompatCase, load_suite, replay_case
from tests.rpc.conftest import RecordingSink, serve

OSAKA_SUITE = SUITE.parent / "osaka-2026-07"

SERVED = merge_tables(*NAMESPACES)
"""The methods ethercattle serves (debug_trace* included); the suite's cases for others
(eth_simulateV1, eth_capabilities ...) belong to the work that adds them."""

PRAGUE_SUITE_DISAGREES = {
    "eth_getStorageAt/get-storage-invalid-key",
    "eth_getStorageAt/get-storage-invalid-key-too-large",
}
"""Cases where geth 1.16 (this suite) and geth 1.15 (the Prague suite, which must stay
98/98) answer the same request differently: storage key errors -32602 vs -32000."""


def _prague_suite_disagrees(case: CompatCase) -> bool:
    """geth 1.16 also added ``blockTimestamp`` to transactions and logs; 1.15 has none
    (``speconly`` cases check only the result's type, so they agree)."""
    if case.id in PRAGUE_SUITE_DISAGREES:
        return True
    return not case.speconly and "blockTimestamp" in case.path.read_text()


SERVED_CASES = [case for case in load_suite(OSAKA_SUITE) if case.method in SERVED]
AGREED_CASES = [case for case in SERVED_CASES if not _prague_suite_disagrees(case)]
"""The served cases both suites agree on: these must pass, here and end to end."""

CASES = [
    pytest.param(case, id=case.id, marks=pytest.mark.xfail(
        strict=True, reason="geth 1.16 answer; the Prague suite (geth 1.15) wants another"))
    if _prague_suite_disagrees(case) else pytest.param(case, id=case.id)
    for case in SERVED_CASES
]


@pytest.fixture(scope="module")
def osaka_db(tmp_path_factory: pytest.TempPathFactory) -> LevelDB:
    db = LevelDB(Path(tmp_path_factory.mktemp("osaka")) / "chaindb")
    import_chain(db, OSAKA_SUITE / "genesis.json", OSAKA_SUITE / "chain.rlp")
    return db


@pytest.fixture
async def osaka_url(osaka_db: LevelDB) -> AsyncIterator[str]:
    runner, url = await serve(RpcService(osaka_db, tx_sink=RecordingSink()))
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
    methods = {param.values[0].method for param in CASES}
    assert methods >= {"eth_config", "eth_blobBaseFee", "eth_call", "eth_sendRawTransaction"}


@pytest.mark.parametrize("case", CASES)
async def test_osaka_case_answers_as_geth_strictly(case: CompatCase, osaka_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        result = await replay_case(session, osaka_url, case)
    assert result.passed and result.strict, result.detail or "error message differs from geth's"
