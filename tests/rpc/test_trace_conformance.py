"""The Osaka rpc-compat suite's debug_trace* cases, replayed over HTTP against a LevelDB replica.

The suite's chain runs into Osaka at block 48, which stock py-evm 0.12 lacks. Until
the fork lands, the chain is imported as far as the fork schedule allows, and a case
that names a block or transaction beyond that is skipped with the reason; every
debug_trace* case of the suite traces blocks 1-3, so all of them run today.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from chain.errors import InvalidBlock, UnsupportedChain
from chain.importer import block_summary, import_chain, read_raw_blocks
from rpc.backend import ReplicaBackend
from rpc.service import RpcService
from storage.leveldb import LevelDB
from tests.rpc.compat import SUITE, CompatCase, load_suite, replay_case
from tests.rpc.conftest import COMPAT_RESULTS, RecordingSink, serve

OSAKA_SUITE = SUITE.parent / "osaka-2026-07"
CASES = [case for case in load_suite(OSAKA_SUITE) if case.method.startswith("debug_trace")]


@dataclass
class OsakaReplica:
    service: RpcService
    missing_from: int | None
    """The first block the chain could not import (None: it imported completely)."""
    reason: str


def _first_unimportable(error: Exception) -> int:
    if isinstance(error, InvalidBlock):
        return error.number
    match = re.search(r"block (\d+) activates", str(error))
    if match is None:
        raise error
    return int(match.group(1))


def _import(db: LevelDB, workdir: Path) -> tuple[int | None, str]:
    """Import the whole chain, or else the blocks before the first one that fails."""
    genesis, chain = OSAKA_SUITE / "genesis.json", OSAKA_SUITE / "chain.rlp"
    try:
        import_chain(db, genesis, chain)
        return None, ""
    except (UnsupportedChain, InvalidBlock) as error:
        first = _first_unimportable(error)
        raw = read_raw_blocks(chain)
        prefix = workdir / "prefix.rlp"
        prefix.write_bytes(b"".join(b for i, b in enumerate(raw) if block_summary(b, i).number < first))
        import_chain(db, genesis, prefix)
        return first, f"the Osaka chain imports only up to block {first - 1}: {error}"


@pytest.fixture(scope="module")
def osaka_replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OsakaReplica]:
    workdir = tmp_path_factory.mktemp("osaka")
    with LevelDB(workdir / "chaindb") as db:
        missing_from, reason = _import(db, workdir)
        yield OsakaReplica(RpcService(db, tx_sink=RecordingSink()), missing_from, reason)


def _names_missing_data(case: CompatCase, backend: ReplicaBackend) -> bool:
    """The case's first request names a block or transaction the replica does not hold."""
    params = json.loads(case.exchanges[0].request).get("params") or [None]
    target = params[0]
    if not isinstance(target, str) or not target.startswith("0x"):
        return False
    if len(target) == 66:
        raw = bytes.fromhex(target[2:])
        return backend.block_by_hash(raw) is None and backend.transaction_location(raw) is None
    return backend.header_by_number(int(target, 16)) is None


def test_the_suite_has_its_trace_cases() -> None:
    assert len(CASES) == 13


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_trace_case_answers_as_geth(case: CompatCase, osaka_replica: OsakaReplica) -> None:
    runner, url = await serve(osaka_replica.service)
    try:
        async with aiohttp.ClientSession() as session:
            result = await replay_case(session, url, case)
    finally:
        await runner.cleanup()
    if not result.passed and osaka_replica.missing_from is not None \
            and _names_missing_data(case, osaka_replica.service.backend):
        pytest.skip(osaka_replica.reason)
    COMPAT_RESULTS.append(result)
    assert result.passed and result.strict, result.detail
