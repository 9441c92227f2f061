"""The cell proof worker: EIP-7594 cell proofs computed in a child process, off the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from chain.errors import SidecarConversionFailed
from chain.kzg import CellProofWorker, cell_proofs
from chain.transactions import CELLS_PER_EXT_BLOB
from tests.chain.test_osaka_transactions import random_blob


@pytest.fixture(scope="module")
def worker() -> Iterator[CellProofWorker]:
    worker = CellProofWorker(max_waiting=1)
    yield worker
    worker.close()


async def test_worker_computes_the_cell_proofs_of_each_blob_in_order(worker: CellProofWorker) -> None:
    blobs = (random_blob(1), random_blob(2))

    proofs = await worker.cell_proofs(blobs)

    assert len(proofs) == 2 * CELLS_PER_EXT_BLOB
    assert proofs == cell_proofs(blobs)


async def test_event_loop_keeps_running_while_the_worker_computes(worker: CellProofWorker) -> None:
    await worker.cell_proofs((random_blob(),))  # the child is up and its setup loaded
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    await worker.cell_proofs((random_blob(3), random_blob(4)))
    elapsed = time.monotonic() - started
    ticker.cancel()

    # ckzg holds the GIL: computed on a thread of this process, the loop would tick about once.
    assert elapsed > 0.2 and ticks >= elapsed / 0.01 / 4


async def test_worker_refuses_a_request_beyond_its_places_at_once(worker: CellProofWorker) -> None:
    first = asyncio.ensure_future(worker.cell_proofs((random_blob(),)))
    await asyncio.sleep(0)

    with pytest.raises(SidecarConversionFailed, match="busy"):
        await worker.cell_proofs((random_blob(),))
    assert len(await first) == CELLS_PER_EXT_BLOB


async def test_malformed_blob_is_a_failed_conversion(worker: CellProofWorker) -> None:
    with pytest.raises(SidecarConversionFailed, match="compute_cells_and_kzg_proofs failed"):
        await worker.cell_proofs((b"\xff" * 131072,))  # field elements above the modulus
