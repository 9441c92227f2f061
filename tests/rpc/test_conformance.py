"""Every rpc-compat (prague-2025-02) exchange, replayed over real HTTP, answers as geth.

The suite was recorded with geth 1.15; ethercattle answers as the current spec and
geth 1.16 (``tests.rpc.compat``): the fields added since are ignored, and the cases
answered otherwise since are expected to differ here and pass in the current suite.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from chain.importer import import_chain
from rpc.service import RpcService
from storage.leveldb import LevelDB
from tests.rpc.compat import SUITE, SUPERSEDED, CompatCase, load_suite, replay_case, replay_suite
from tests.rpc.conftest import COMPAT_RESULTS, RecordingSink, serve

CASES = load_suite()
CURRENT_CASES = [case for case in CASES if case.id not in SUPERSEDED]


def test_suite_is_present() -> None:
    assert len(CASES) >= 98


@pytest.mark.parametrize("case", [
    pytest.param(case, id=case.id, marks=pytest.mark.xfail(strict=True, reason=SUPERSEDED[case.id]))
    if case.id in SUPERSEDED else pytest.param(case, id=case.id)
    for case in CASES
])
async def test_compat_case_answers_as_geth(case: CompatCase, compat_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        result = await replay_case(session, compat_url, case)
    COMPAT_RESULTS.append(result)
    assert result.passed, result.detail


async def test_whole_suite_passes_on_a_leveldb_replica(tmp_path: Path) -> None:
    """The same answers from a plyvel-backed database, as a replica holds it."""
    with LevelDB(tmp_path / "chaindb") as db:
        import_chain(db, SUITE / "genesis.json", SUITE / "chain.rlp")
        runner, url = await serve(RpcService(db, tx_sink=RecordingSink()))
        try:
            results = await replay_suite(url, CURRENT_CASES)
        finally:
            await runner.cleanup()
    failures = [f"{r.case.id}: {r.detail}" for r in results if not r.passed]
    assert not failures, "\n".join(failures)
