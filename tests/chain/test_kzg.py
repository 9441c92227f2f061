"""The KZG worker: cell proofs computed and verified in a child process, off the event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.errors import InvalidTransaction, KzgWorkerUnavailable
from chain.kzg import KzgWorker, cell_proofs, trusted_setup
from chain.transactions import CELLS_PER_EXT_BLOB, BlobSidecar, verify_sidecar_proofs
from tests.chain.test_osaka_transactions import random_blob

import ckzg

PARENT = """
import asyncio, time
from chain.kzg import KzgWorker, cell_proofs
worker = KzgWorker(precompute=0)
asyncio.run(worker.run(cell_proofs, ()))
print(*worker._pool._processes, flush=True)
time.sleep(60)
"""
"""A process whose worker's child is up: prints the child's pid, then waits."""


@pytest.fixture(scope="module")
def worker() -> Iterator[KzgWorker]:
    worker = KzgWorker(max_waiting=1)
    yield worker
    worker.close()


async def test_worker_computes_the_cell_proofs_of_each_blob_in_order(worker: KzgWorker) -> None:
    blobs = (random_blob(1), random_blob(2))

    proofs = await worker.run(cell_proofs, blobs)

    assert len(proofs) == 2 * CELLS_PER_EXT_BLOB
    assert proofs == cell_proofs(blobs)


async def test_event_loop_keeps_running_while_the_worker_computes(worker: KzgWorker) -> None:
    await worker.run(cell_proofs, (random_blob(),))  # the child is up and its setup loaded
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    await worker.run(cell_proofs, (random_blob(3), random_blob(4)))
    elapsed = time.monotonic() - started
    ticker.cancel()

    # ckzg holds the GIL: computed on a thread of this process, the loop would tick about once.
    assert elapsed > 0.2 and ticks >= elapsed / 0.01 / 4


async def test_worker_refuses_work_beyond_its_places_at_once(worker: KzgWorker) -> None:
    first = asyncio.ensure_future(worker.run(cell_proofs, (random_blob(),)))
    await asyncio.sleep(0)

    with pytest.raises(KzgWorkerUnavailable, match="1 blob sidecars already being checked or converted"):
        await worker.run(cell_proofs, (random_blob(),))
    assert len(await first) == CELLS_PER_EXT_BLOB


async def test_what_the_work_raises_in_the_child_is_raised_to_the_caller(worker: KzgWorker) -> None:
    blob = random_blob()
    commitment = ckzg.blob_to_kzg_commitment(blob, trusted_setup())
    proofs = cell_proofs((blob,))
    swapped = BlobSidecar((blob,), (commitment,), (proofs[1], proofs[0], *proofs[2:]), version=1)

    with pytest.raises(InvalidTransaction, match="blob KZG proofs do not verify"):
        await worker.run(verify_sidecar_proofs, swapped)
    with pytest.raises(RuntimeError, match="compute_cells_and_kzg_proofs failed"):
        await worker.run(cell_proofs, (b"\xff" * 131072,))  # field elements above the modulus


async def test_worker_starts_a_new_child_after_its_child_died(worker: KzgWorker) -> None:
    await worker.run(cell_proofs, (random_blob(),))
    [child] = worker._pool._processes.values()  # type: ignore[union-attr]
    child.kill()
    child.join()
    await asyncio.sleep(0.2)  # the pool notices between calls: the next submit is refused at once

    with pytest.raises(KzgWorkerUnavailable, match="stopped"):
        await worker.run(cell_proofs, (random_blob(),))
    assert len(await worker.run(cell_proofs, (random_blob(),))) == CELLS_PER_EXT_BLOB


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_worker_child_exits_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE,
                              cwd=Path(__file__).resolve().parents[2])
    assert parent.stdout is not None
    child = int(parent.stdout.readline())

    parent.kill()  # no cleanup runs: only the child's own watch can end it
    parent.wait()

    deadline = time.monotonic() + 10
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert not running(child)
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)
