"""What a replica worker hands the RPC service: its readiness hook and its eth_syncing status.

Wiring, where the worker builds its ``RpcService``::

    replica = replica_state()
    RpcService(replica.db, readiness=readiness_hook(replica), sync_status=ReplicaSyncStatus(replica), ...)

and, per JSON-RPC call answered, ``replica.metrics.record_rpc(method, "ok" | error code, seconds)``.
"""

from __future__ import annotations

from typing import Callable

from replica.readiness import not_ready_reason, sync_progress
from replica.state import ReplicaState
from rpc.backend import SyncProgress


def readiness_hook(replica: ReplicaState) -> Callable[[], str | None]:
    """None when the replica may serve; otherwise why not (the failed /readyz checks, one line)."""
    return lambda: not_ready_reason(replica)


class ReplicaSyncStatus:
    """eth_syncing from the log: false once caught up, else (startingBlock, currentBlock, highestBlock)."""

    def __init__(self, replica: ReplicaState) -> None:
        self.replica = replica

    def progress(self) -> SyncProgress | None:
        progress = sync_progress(self.replica)
        if progress is None:
            return None
        return SyncProgress(progress.starting_block, progress.current_block, progress.highest_block)
