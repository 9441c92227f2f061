"""Shared fixtures: the rpc-compat chain (geth's recorded answers) and imported copies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth.db.atomic import AtomicDB

from chain.importer import ImportProgress, ImportResult, import_chain

RPC_COMPAT = Path("/work/shared/rpc-compat/prague-2025-02")


@dataclass(frozen=True)
class RpcCompat:
    """Paths of the rpc-compat chain and the responses geth recorded for it."""

    root: Path

    @property
    def genesis(self) -> Path:
        return self.root / "genesis.json"

    @property
    def chain(self) -> Path:
        return self.root / "chain.rlp"

    def genesis_document(self) -> dict[str, Any]:
        return json.loads(self.genesis.read_text())  # type: ignore[no-any-return]

    def result(self, method: str, test: str) -> Any:
        """The ``result`` of the recorded response in ``<method>/<test>.io``."""
        text = (self.root / method / f"{test}.io").read_text()
        response = next(line for line in text.splitlines() if line.startswith("<< "))
        return json.loads(response[3:])["result"]


@pytest.fixture(scope="session")
def rpc_compat() -> RpcCompat:
    if not RPC_COMPAT.is_dir():
        pytest.skip(f"{RPC_COMPAT} is not available")
    return RpcCompat(RPC_COMPAT)


@dataclass(frozen=True)
class Imported:
    db: AtomicDB
    result: ImportResult
    progress: list[ImportProgress]


@pytest.fixture(scope="session")
def imported(rpc_compat: RpcCompat) -> Imported:
    """The rpc-compat chain imported once; tests must only read from it."""
    db = AtomicDB()
    progress: list[ImportProgress] = []
    result = import_chain(db, rpc_compat.genesis, rpc_compat.chain, progress=progress.append)
    return Imported(db, result, progress)
