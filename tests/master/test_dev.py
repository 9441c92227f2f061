"""The dev master behind its own JSON-RPC: a blob sidecar is checked once, in the RPC's KZG worker, off the
event loop that also publishes the CDC log; what does not verify is refused and never mined."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import ckzg
import pytest
from eth.db.atomic import AtomicDB
from eth_typing import BlockNumber
from eth_utils import keccak

from chain.kzg import KzgWorker
from chain.transactions import split_network_form
from master.dev import DevMaster
from rpc.service import RpcService
from tests.rpc.test_submit import cell_proof_form, forged_cell_proof_form, osaka_blob_transaction, send


@pytest.fixture(scope="module")
def kzg_worker() -> Iterator[KzgWorker]:
    """One KZG worker child for the module's masters (spawning one takes about 5 s)."""
    worker = KzgWorker()
    yield worker
    worker.close()


@pytest.fixture
async def master_rpc(kzg_worker: KzgWorker) -> AsyncIterator[tuple[DevMaster, RpcService]]:
    """A dev master on Osaka rules mining on each transaction, and its JSON-RPC, as ``ethercattle master --dev`` wires them."""
    db = AtomicDB()
    dev = DevMaster(db, chain_id=1337, block_time=0, fork="osaka")
    service = RpcService(db, tx_sink=dev)
    service.backend.kzg = kzg_worker
    mining = asyncio.create_task(dev.run())
    yield dev, service
    mining.cancel()


def mined_hashes(dev: DevMaster) -> list[bytes]:
    chain = dev.miner.chain
    head = chain.get_canonical_head()
    return [tx.hash for number in range(1, head.block_number + 1)
            for tx in chain.get_canonical_block_by_number(BlockNumber(number)).transactions]


async def test_master_mines_a_blob_transaction_whose_cell_proofs_only_its_kzg_worker_verified(
        master_rpc: tuple[DevMaster, RpcService], monkeypatch: pytest.MonkeyPatch) -> None:
    dev, service = master_rpc
    sent = cell_proof_form(osaka_blob_transaction())
    verified_here: list[int] = []
    verify = ckzg.verify_cell_kzg_proof_batch

    def verify_here(*args: Any) -> Any:
        verified_here.append(len(args[0]))
        return verify(*args)

    monkeypatch.setattr(ckzg, "verify_cell_kzg_proof_batch", verify_here)

    answer = await send(service, sent)

    tx_hash = keccak(split_network_form(sent)[0])
    assert answer == {"jsonrpc": "2.0", "id": 1, "result": "0x" + tx_hash.hex()}
    assert mined_hashes(dev) == [tx_hash]
    assert verified_here == []  # not in this process, whose event loop publishes the log


async def test_master_refuses_a_blob_transaction_whose_cell_proofs_do_not_verify_and_mines_nothing(
        master_rpc: tuple[DevMaster, RpcService]) -> None:
    dev, service = master_rpc
    answer = await send(service, forged_cell_proof_form(osaka_blob_transaction()))

    assert answer["error"] == {"code": -32000, "message": "blob KZG proofs do not verify"}
    assert mined_hashes(dev) == []
