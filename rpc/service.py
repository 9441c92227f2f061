"""The JSON-RPC service: one backend, the merged namespace tables, one dispatcher.

This is what the replica's composition root constructs (from its LevelDB, its sync
status, readiness hook, transaction sink and limits) and what the worker's web server
and the master's aiohttp app (``rpc.http``) serve. The replica calls ``invalidate()``
after each write the apply agent commits.
"""

from __future__ import annotations

from typing import Iterable

from eth.abc import DatabaseAPI

from rpc import blocks, chaininfo, fees, logs, net, state, transactions, txpool, web3
from rpc import capabilities, ethconfig, execution, headers, simulate, storagevalues, submit, submitsync
from rpc.backend import PendingView, Readiness, ReplicaBackend, SyncStatus, TransactionSink
from rpc.blockwait import BlockWait
from rpc.brokerwait import BrokerWait, PendingOnBroker
from rpc.dispatch import CallObserver, Dispatcher, MethodTable, merge_tables
from rpc.limits import RpcLimits
from rpc.response_cache import ResponseCache
from rpc.shedding import Admission, Behind, never_behind
from rpc.tracing import api as tracing

NAMESPACES: tuple[MethodTable, ...] = (
    web3.METHODS,
    net.METHODS,
    chaininfo.METHODS,
    ethconfig.METHODS,
    blocks.METHODS,
    transactions.METHODS,
    state.METHODS,
    execution.METHODS,
    simulate.METHODS,
    fees.METHODS,
    logs.METHODS,
    txpool.METHODS,
    submit.METHODS,
    tracing.METHODS,
    submitsync.METHODS,
    headers.METHODS,
    capabilities.METHODS,
    storagevalues.METHODS,
)
"""Every namespace's wire-name table; merged once, duplicates refused."""


class RpcService:
    """Ethereum JSON-RPC over a replica's database.

    Arguments:
        db: the replica's database (any py-evm ``DatabaseAPI``; read through ``ReadOnlyDB``).
        limits: resource limits (defaults: geth's).
        sync_status: reports catch-up progress for eth_syncing (default: not syncing).
        readiness: returns None when the replica may serve, else the reason it may not.
        tx_sink: receives eth_sendRawTransaction's transactions (default: refused).
        pending: the cluster's pending transactions, for "pending" nonces, lookups and txpool_* (default: none).
        extra_methods: more wire-name tables (e.g. the replica's own), merged the same way.
        on_call: told of every call answered (method, "ok" or error code, seconds), e.g. for metrics.
        behind: says why the RPC should step aside while the apply agent falls behind: HTTP requests are
            shed and executions pause (default: never).
        writes_announced: ``invalidate()`` is called after every write to ``db``, so the head may be
            kept in memory between writes (a replica worker; see ``ReplicaBackend``).
    """

    def __init__(
        self,
        db: DatabaseAPI,
        *,
        limits: RpcLimits | None = None,
        sync_status: SyncStatus | None = None,
        readiness: Readiness | None = None,
        tx_sink: TransactionSink | None = None,
        pending: PendingView | None = None,
        extra_methods: Iterable[MethodTable] = (),
        on_call: CallObserver | None = None,
        behind: Behind | None = None,
        writes_announced: bool = False,
    ) -> None:
        self.limits = limits or RpcLimits()
        self.admission = Admission(self.limits.max_in_flight, behind or never_behind)
        """Which HTTP requests are served, and how many were shed."""
        self.broker_wait = BrokerWait(self.limits.max_broker_waiting, self.admission)
        """Calls waiting on the broker (filters, sent transactions, "pending" nonces): as many again as the
        requests served at once, apart from them, so reads keep every place."""
        on_broker = None if pending is None else PendingOnBroker(pending, self.broker_wait)
        self.backend = ReplicaBackend(db, self.limits, sync_status, readiness, tx_sink, on_broker, behind,
                                      writes_announced)
        self.methods = merge_tables(*NAMESPACES, *extra_methods)
        self.responses = ResponseCache(self.limits.response_cache_bytes)
        self.block_wait = BlockWait(self.limits.block_wait_blocks, self.limits.block_wait_seconds,
                                    max(1, self.limits.max_in_flight // 4))
        self.dispatcher = Dispatcher(self.backend, self.methods, on_call, self.responses, self.block_wait,
                                     self.broker_wait)

    def invalidate(self) -> None:
        """The apply agent's hook after each committed write (cheap): calls waiting for a block look again.

        The response cache needs nothing here: its keys carry the head hash they were read at."""
        self.backend.invalidate()
        self.block_wait.head_moved()

    async def handle_body(self, body: bytes) -> bytes | None:
        """A JSON-RPC request body to its response body (None: nothing to send)."""
        return await self.dispatcher.handle_body(body)
