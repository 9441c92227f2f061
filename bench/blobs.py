"""Blob sidecars: what verifying one costs, and what converting a version-0 sidecar to cell proofs costs.

    .venv/bin/python bench/blobs.py [--blobs 20] [--precompute 0]

After Osaka, ``eth_sendRawTransaction`` converts a version-0 sidecar (one KZG proof per
blob) to version 1 (EIP-7594: 128 cell proofs per blob) before the transaction goes
on the topic. Rows, per blob of random field elements, p50 and p99 over ``--blobs`` blobs:

- verifying a version-0 sidecar (``verify_blob_kzg_proof_batch``) and a version-1 one
  (``compute_cells`` and ``verify_cell_kzg_proof_batch``), as ``verify_sidecar`` does,
  on the caller's thread;
- the conversion in this process (``chain.kzg.cell_proofs``, ckzg's
  ``compute_cells_and_kzg_proofs``), with the trusted setup loaded with ``--precompute``
  (0, the process-wide setup; ckzg takes 0-15, more is faster and larger);
- the conversion through ``KzgWorker`` (the child process the RPC uses, its setup
  loaded with precompute 8; adds pickling and the pipe), and its first call (spawning the
  child, loading its setup);
- the longest the event loop went without running while a conversion ran on a thread
  of this process and while it ran in the worker;
- ``eth_sendRawTransaction`` of a transaction of one blob and of six (Osaka's most) on a
  dev chain on Osaka rules, through ``RpcService.handle_body``, whole (what a client
  waits): version 0 (verified here, converted in the worker) and version 1 (verified
  in the worker);
- the dev master (its RPC over a ``DevMaster`` sink, mining each transaction as it comes):
  the longest its event loop, which also publishes the CDC log, went without running
  while it took and mined a version-1 transaction of one blob and of six, beside a plain
  transfer (the block's own cost).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ckzg  # noqa: E402
import orjson  # noqa: E402
from eth.db.atomic import AtomicDB  # noqa: E402
from eth_account import Account  # noqa: E402

from chain.dev import DEV_CHAIN_ID, dev_accounts, init_dev_chain  # noqa: E402
from chain.kzg import TRUSTED_SETUP_PATH, KzgWorker, cell_proofs, trusted_setup  # noqa: E402
from chain.transactions import (BlobSidecar, encode_network_form, kzg_to_versioned_hash,  # noqa: E402
                                verify_sidecar_proofs, with_cell_proofs)
from master.dev import DevMaster  # noqa: E402
from rpc.service import RpcService  # noqa: E402

BLOB_SIZE = 4096 * 32


def random_blob() -> bytes:
    """Field elements below the modulus (a leading zero byte), otherwise random."""
    return b"".join(b"\x00" + os.urandom(31) for _ in range(BLOB_SIZE // 32))


def version_0(blobs: tuple[bytes, ...]) -> BlobSidecar:
    setup = trusted_setup()
    commitments = tuple(ckzg.blob_to_kzg_commitment(blob, setup) for blob in blobs)
    proofs = tuple(ckzg.compute_blob_kzg_proof(blob, commitment, setup) for blob, commitment in zip(blobs, commitments))
    return BlobSidecar(blobs, commitments, proofs)


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:8.1f} ms   p99 {p99 * 1000:8.1f} ms"


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


async def timed_async(work: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def longest_stall(work: Callable[[], Awaitable[object]]) -> float:
    """The longest gap between 1 ms ticks of the event loop while ``work`` runs."""
    longest, done = 0.0, False

    async def tick() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    await work()
    done = True
    await ticker
    return longest


def osaka_send(blobs: tuple[bytes, ...], nonce: int, version: int) -> bytes:
    """An eth_sendRawTransaction body: a dev account's transaction of ``blobs`` with a sidecar of ``version``
    (a plain transfer when ``blobs`` is empty)."""
    (_, key), (to, _) = dev_accounts()[:2]
    transaction = {"type": 2, "chainId": DEV_CHAIN_ID, "nonce": nonce, "to": to, "value": 0, "gas": 21_000,
                   "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    if not blobs:
        raw = bytes(Account.sign_transaction(transaction, key).raw_transaction)
        return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": ["0x" + raw.hex()]})
    sidecar = version_0(blobs)
    if version == 1:
        sidecar = with_cell_proofs(sidecar, cell_proofs(sidecar.blobs))
    transaction.update({"type": 3, "maxFeePerBlobGas": 10**10,
                        "blobVersionedHashes": [kzg_to_versioned_hash(commitment) for commitment in sidecar.commitments]})
    raw = encode_network_form(bytes(Account.sign_transaction(transaction, key).raw_transaction), sidecar)
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": ["0x" + raw.hex()]})


class Discard:
    async def submit(self, raw_transaction: bytes, tx_hash: bytes, sender: bytes) -> None:
        return None


async def master_stalls(worker: KzgWorker, samples: list[bytes]) -> None:
    """The dev master's longest event loop stall while its RPC takes a transaction and the miner mines it."""
    db = AtomicDB()
    dev = DevMaster(db, DEV_CHAIN_ID, block_time=0, fork="osaka")
    service = RpcService(db, tx_sink=dev)
    service.backend.kzg = worker
    mining = asyncio.create_task(dev.run())
    try:
        for count in (0, 1, 6):
            groups = [tuple(samples[start:start + count]) for start in range(0, len(samples) - count + 1, max(count, 1))]
            stalls = []
            for group in groups[:5]:
                body = osaka_send(group, dev.head_number(), version=1)  # one transaction a block
                stalls.append(await longest_stall(lambda: service.handle_body(body)))
            kind = f"{count} blob{'s' if count > 1 else ' '} v1" if count else "a transfer "
            print(f"dev master takes and mines {kind}: longest event loop stall "
                  f"{min(stalls) * 1000:.1f}-{max(stalls) * 1000:.1f} ms   ({len(stalls)} sent)")
    finally:
        mining.cancel()


async def main(blobs: int, precompute: int) -> None:
    print(f"{blobs} blobs of random field elements; ckzg {importlib.metadata.version('ckzg')}")
    samples = [random_blob() for _ in range(blobs)]
    zeroth = [version_0((blob,)) for blob in samples]
    first = [BlobSidecar(s.blobs, s.commitments, cell_proofs(s.blobs), version=1) for s in zeroth]
    for label, sidecars in (("verify version 0 (1 proof)        ", zeroth), ("verify version 1 (128 cell proofs)", first)):
        print(f"{label} {percentiles([timed(lambda: verify_sidecar_proofs(s)) for s in sidecars])}")

    started = time.perf_counter()
    setup = ckzg.load_trusted_setup(TRUSTED_SETUP_PATH, precompute)
    loaded = time.perf_counter() - started
    converted = [timed(lambda: ckzg.compute_cells_and_kzg_proofs(blob, setup)) for blob in samples]
    print(f"convert in process (precompute {precompute:2}) {percentiles(converted)}   (setup loaded in {loaded:.1f} s)")

    worker = KzgWorker()
    try:
        spawned = await timed_async(lambda: worker.run(cell_proofs, samples[:1]))
        through_worker = [await timed_async(lambda: worker.run(cell_proofs, (blob,))) for blob in samples]
        print(f"convert in the worker process      {percentiles(through_worker)}   (first call {spawned:.1f} s)")
        on_thread = await longest_stall(lambda: asyncio.to_thread(cell_proofs, samples[:1]))
        in_worker = await longest_stall(lambda: worker.run(cell_proofs, samples[:1]))
        print(f"longest event loop stall, one blob: {on_thread * 1000:.0f} ms on a thread, "
              f"{in_worker * 1000:.1f} ms in the worker")

        db = AtomicDB()
        init_dev_chain(db, fork="osaka")
        service = RpcService(db, tx_sink=Discard())
        service.backend.kzg.close()
        service.backend.kzg = worker  # already spawned: time the calls, not the child's start
        for count, version in ((1, 0), (1, 1), (6, 0), (6, 1)):  # Osaka allows 6 blobs a transaction
            groups = [tuple(samples[start:start + count]) for start in range(0, len(samples) - count + 1, count)]
            bodies = [osaka_send(group, nonce, version) for nonce, group in enumerate(groups)]
            answered = [await timed_async(lambda: service.handle_body(body)) for body in bodies]
            print(f"eth_sendRawTransaction, {count} blob{'s' if count > 1 else ' '} v{version} {percentiles(answered)}"
                  f"   ({len(bodies)} sent)")
        await master_stalls(worker, samples)
    finally:
        worker.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blobs", type=int, default=20)
    parser.add_argument("--precompute", type=int, default=0, help="ckzg's precompute for the in-process row (0-15)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.blobs, arguments.precompute))
