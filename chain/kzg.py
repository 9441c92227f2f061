"""One KZG trusted setup per process, for our code and for py-evm's precompile.

Loading the EIP-4844 trusted setup takes about 3 s here, and py-evm 0.12's point
evaluation precompile (address 0x0a) loads it again on every call, which would make
each block import, ``eth_call`` or ``eth_estimateGas`` touching 0x0a take seconds.
``patch_point_evaluation`` makes that precompile reuse the process-wide setup;
``chain.config.chain_class`` applies it, so every chain this project builds gets it.

``KzgWorker`` runs the costly KZG work of ``eth_sendRawTransaction`` (verifying cell
proofs, computing them to convert a version-0 sidecar after Osaka) in a child process:
ckzg holds the GIL for the whole computation.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, TypeVar

import ckzg
import eth.precompiles.point_evaluation as point_evaluation

from chain.errors import KzgWorkerUnavailable

T = TypeVar("T")

TRUSTED_SETUP_PATH: str = point_evaluation.TRUSTED_SETUP_PATH
"""py-evm's copy of the mainnet KZG ceremony output."""


def trusted_setup(path: str = TRUSTED_SETUP_PATH, precompute: int = 0) -> Any:
    """The loaded setup for ``path`` (loaded on first use, then shared)."""
    return _load(str(path), int(precompute))


@functools.lru_cache(maxsize=None)
def _load(path: str, precompute: int) -> Any:
    # Keyed on normalised positional arguments: lru_cache would otherwise load
    # again for ``f()`` versus ``f(path, 0)``.
    return ckzg.load_trusted_setup(path, precompute)


def patch_point_evaluation() -> None:
    """Make py-evm's point evaluation precompile use ``trusted_setup`` (idempotent).

    The precompile module calls the name ``load_trusted_setup`` it imported from
    ckzg; rebinding that name is the narrowest change that removes the reload.
    """
    point_evaluation.load_trusted_setup = trusted_setup  # type: ignore[attr-defined]


def cell_proofs(blobs: Sequence[bytes], precompute: int = 0) -> tuple[bytes, ...]:
    """EIP-7594: the cell proofs of each blob's extension, blob after blob.

    About half a second a blob here (a third with ``precompute`` 8), all of it inside
    ckzg with the GIL held: call it through ``KzgWorker`` from anything that serves.
    Raises ckzg's ``RuntimeError``/``ValueError`` for a malformed blob.
    """
    setup = trusted_setup(TRUSTED_SETUP_PATH, precompute)
    return tuple(proof for blob in blobs for proof in ckzg.compute_cells_and_kzg_proofs(blob, setup)[1])


class KzgWorker:
    """Runs costly KZG work (cell proofs, their verification) in one child process, off the event loop.

    A thread would not help: ckzg keeps the GIL while it computes, so the event loop
    stalls as long as the computation (405-842 ms for converting one blob, measured
    with ``bench/blobs.py``). The child is spawned (the parent runs threads, so no fork)
    on first use and loads its own trusted setup once (about 5 s, the first call's
    price). It runs one piece of work at a time; beyond ``max_waiting`` pieces inside
    it (running or queued) a new one is refused at once, so a burst cannot queue for
    minutes while holding the callers' places.

    Arguments:
        max_waiting: pieces of work the worker holds at once before it refuses more.
        precompute: ckzg's table size for the child's setup (0-15). 8, measured with
            ``bench/blobs.py``: converting a blob takes 313 ms instead of 493 (0), for
            about 100 MB more in the child (170 MB resident); 15 took three minutes to load.
    """

    def __init__(self, max_waiting: int = 4, precompute: int = 8) -> None:
        self.max_waiting = max_waiting
        self.precompute = precompute
        self._places = threading.BoundedSemaphore(max_waiting)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args, precompute=...)`` in the child, with the child's setup's ``precompute``.

        ``work`` is a module-level function (it is pickled by name); what it raises is
        raised here. Raises ``KzgWorkerUnavailable`` when the worker is full or its child died.
        """
        if not self._places.acquire(blocking=False):
            raise KzgWorkerUnavailable(f"{self.max_waiting} blob sidecars already being checked or converted")
        try:
            future: Future[T] = self._executor().submit(work, *args, precompute=self.precompute)
        except BaseException as error:
            self._places.release()
            raise self._stopped(error) if isinstance(error, BrokenProcessPool) else error
        # The place is held until the child is done, even if the caller stops waiting.
        future.add_done_callback(lambda _: self._places.release())
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as error:
            raise self._stopped(error) from error

    def _stopped(self, error: BrokenProcessPool) -> KzgWorkerUnavailable:
        """The child died (killed, out of memory): the next call starts a new one."""
        self.close()
        return KzgWorkerUnavailable(f"the KZG worker process stopped: {error}")

    def close(self) -> None:
        """Stop the child (if one started); a later call starts a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_child, initargs=(self.precompute,))
            return self._pool


def _start_child(precompute: int) -> None:
    """In the worker's child: exit when the parent does, and load the trusted setup.

    A parent killed with -9 runs no cleanup, and the child would wait for work forever,
    holding its memory (seen: still there, adopted by init, after its replica was killed).
    """
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="parent-watch", daemon=True).start()
    trusted_setup(TRUSTED_SETUP_PATH, precompute)


def _exit_with(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(0)
