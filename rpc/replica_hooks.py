"""What a replica worker hands the RPC service: its readiness hook and its eth_syncing status.

Wiring, where the worker builds its ``RpcService``::

    replica = replica_state()
    RpcService(replica.db, readiness=ReadinessHook(replica), sync_status=ReplicaSyncStatus(replica), ...)

and, per JSON-RPC call answered, ``replica.metrics.record_rpc(method, "ok" | error code, seconds)``.
"""

from __future__ import annotations

import time
from typing import Callable

from replica.readiness import not_ready_reason, sync_progress
from replica.state import ReplicaState
from rpc.backend import SyncProgress


class ReadinessHook:
    """None when the replica may serve; otherwise why not (the failed /readyz checks, one line).

    The verdict is reused for ``max_age`` seconds: running every check cost about a
    tenth of a cheap call's CPU (eth_blockNumber under load), while what the checks
    read moves in seconds (heartbeat and broker ages) or is final (a halt), so a
    call may be answered at most ``max_age`` after the replica turned unready.
    """

    def __init__(self, replica: ReplicaState, max_age: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.replica = replica
        self.max_age = max_age
        self.clock = clock
        self._verdict: str | None = None
        self._at = float("-inf")

    def __call__(self) -> str | None:
        now = self.clock()
        if now - self._at >= self.max_age:
            self._verdict, self._at = not_ready_reason(self.replica), now
        return self._verdict



class ReplicaSyncStatus:
    """eth_syncing from the log: false once caught up, else (startingBlock, currentBlock, highestBlock)."""

    def __init__(self, replica: ReplicaState) -> None:
        self.replica = replica

    def progress(self) -> SyncProgress | None:
        progress = sync_progress(self.replica)
        if progress is None:
            return None
        return SyncProgress(progress.starting_block, progress.current_block, progress.highest_block)
