"""Re-executing a stored block on a throwaway overlay, to trace its transactions.

The state is the parent's post-state; the block's own context (coinbase, number,
timestamp, base fee, the 256 hashes BLOCKHASH sees) comes from its header; the
fork's block-start system updates (Cancun's beacon root, Prague's history storage)
run first, as at import; then the transactions run in order, each in the state the
previous ones left. Every write lands in an ``OverlayDB`` that is dropped after the
request, so the replica's database is never touched. Trie reads go through the
cache eth_call shares (keyed by root, so a replay's writes never leak into it). A traced
replay keeps its accounts in a ``CallAccountDB``, as a call does; the state before a
transaction (debug_traceCall's ``txIndex``) needs its root, so it runs on py-evm's.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

from eth.abc import StateAPI
from eth.db.chain import ChainDB
from eth.vm.chain_context import ChainContext

from rpc.backend import BlockData, ReplicaBackend
from rpc.callcache import share_reads
from rpc.errors import ServerError
from rpc.evmhooks import throwaway_class
from rpc.format import data
from rpc.tracing.hooks import Tracer, TxOutcome, TxPosition, traced_state_class
from storage.overlay import OverlayDB

TracerFactory = Callable[[], Tracer]


def _block_start_state(backend: ReplicaBackend, block: BlockData, db: OverlayDB, tracer: Tracer,
                       deadline: float, throwaway: bool) -> StateAPI:
    """The state the block's first transaction runs in (its system updates applied), writing to ``db``.

    Its class runs ``tracer``'s hooks; the state itself reports to nobody until a
    transaction is traced (``_traced``). A ``throwaway`` state keeps its accounts in a
    ``CallAccountDB`` (it writes nowhere, and cannot make a state root).
    """
    parent = backend.header_by_hash(block.header.parent_hash)
    if block.number == 0 or parent is None:
        raise ServerError("genesis is not traceable")
    chain = backend.chain
    chain_context = ChainContext(chain.chain_id)
    vm: Any = block.vm_class(header=block.header, chaindb=ChainDB(db), chain_context=chain_context,
                             consensus_context=chain.consensus_context)
    context = vm.create_execution_context(block.header, backend.previous_hashes(block.header), chain_context)
    fork_state = block.vm_class.get_state_class()
    if throwaway:
        state_class = traced_state_class(backend.derived, throwaway_class(fork_state), tracer, deadline)
        state = state_class(db, context, parent.state_root, backend.call_reads)  # type: ignore[call-arg]
    else:
        state = traced_state_class(backend.derived, fork_state, tracer, deadline)(db, context, parent.state_root)
        share_reads(state, backend.call_reads)
    state.tracer = None  # type: ignore[attr-defined]
    vm._state = state
    vm.block_preprocessing(block.block)
    return state


def _run_untraced(state: StateAPI, block: BlockData, count: int) -> None:
    """Run the block's first ``count`` transactions, as import did."""
    for transaction in block.transactions[:count]:
        state.lock_changes()
        state.apply_transaction(transaction)


def _traced(state: StateAPI, block: BlockData, index: int, tracer: Tracer, timeout: float) -> Tracer:
    """Run transaction ``index`` reporting to ``tracer`` for at most ``timeout`` seconds
    (and never past the state's own deadline); the state moves past it."""
    transaction = block.transactions[index]
    tracer.locate(TxPosition(block.hash, block.number, transaction.hash, index))
    state.lock_changes()
    budget = state.call_deadline  # type: ignore[attr-defined]
    state.tracer, state.call_deadline = tracer, min(time.monotonic() + timeout, budget)  # type: ignore[attr-defined]
    try:
        computation = state.apply_transaction(transaction)
    finally:
        state.tracer, state.call_deadline = None, budget  # type: ignore[attr-defined]
    error = computation.error if computation.is_error else None
    tracer.finish(TxOutcome(block.gas_used(index), computation.output, error))
    return tracer


def trace_transactions(backend: ReplicaBackend, block: BlockData, new_tracer: TracerFactory, timeout: float,
                       deadline: float, only: int | None = None) -> Iterator[tuple[int, Tracer]]:
    """Replay ``block``; yield (index, finished tracer) for each transaction, or only for ``only``.

    Each traced transaction may run ``timeout`` seconds (geth's tracer timeout); the whole
    replay stops at ``deadline``. Transactions after ``only`` are not run.
    """
    tracer = new_tracer()
    state = _block_start_state(backend, block, OverlayDB(backend.db), tracer, deadline, throwaway=True)
    if only is not None:
        _run_untraced(state, block, only)
        yield only, _traced(state, block, only, tracer, timeout)
        return
    for index in range(len(block.transactions)):
        yield index, _traced(state, block, index, tracer, timeout)
        tracer = new_tracer()


def state_before(backend: ReplicaBackend, block: BlockData, index: int, deadline: float) -> tuple[OverlayDB, bytes]:
    """Where transaction ``index`` of ``block`` starts: an overlay holding that state, and its root.

    geth's ``StateAtTransaction``, for debug_traceCall's ``txIndex``.
    """
    if index >= len(block.transactions):
        raise ServerError(f"transaction index {index} out of range for block {data(block.hash)}")
    db = OverlayDB(backend.db)
    state = _block_start_state(backend, block, db, Tracer(), deadline, throwaway=False)
    _run_untraced(state, block, index)
    state.persist()
    return db, state.state_root
