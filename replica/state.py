"""The live state of one replica process, shared by its agents and its web views.

The apply agent is the only writer; views only read. The LevelDB handle, the
applier, what the last heartbeat said, how far the log reaches, and why the
replica halted (if it did) all live here, so readiness, metrics and the RPC
read one consistent picture without importing the agents.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Callable

from pipeline.record import Authenticator, Heartbeat
from pipeline.settings import Settings
from replica.applier import ApplyHalted, ApplyOutcome, Applier
from storage.leveldb import LevelDB

AppliedListener = Callable[[ApplyOutcome], None]


@dataclass
class ReplicaState:
    settings: Settings
    db: LevelDB
    applier: Applier
    started_at: float = field(default_factory=time.time)
    log_end: int | None = None  # next offset past the log's last message, as the consumer last saw it
    heartbeat: Heartbeat | None = None
    halted: ApplyHalted | None = None
    caught_up: bool = False  # reached the log's end at least once since start
    resumed: bool = False  # the stored position was checked and the consumer seeks there
    listeners: list[AppliedListener] = field(default_factory=list)
    records_applied: int = 0  # by this process, since it started
    duplicates_skipped: int = 0

    @classmethod
    def open(cls, settings: Settings) -> "ReplicaState":
        db = LevelDB(settings.chaindb)
        return cls(settings, db, Applier(db, Authenticator.for_cluster(settings.secret, settings.cluster)))

    @property
    def lag(self) -> int | None:
        """Messages between the stored position and the log's end (None until the end is known)."""
        if self.log_end is None:
            return None
        return max(self.log_end - self.applier.position.next_offset, 0)

    def applied(self, outcome: ApplyOutcome) -> None:
        self.records_applied += outcome.records
        self.duplicates_skipped += outcome.duplicates
        if outcome.heartbeat is not None:
            self.heartbeat = outcome.heartbeat
        for listener in self.listeners:
            listener(outcome)

    def observe_log_end(self, end: int | None) -> None:
        if end is None:
            return
        self.log_end = end
        if self.lag == 0:
            self.caught_up = True


@functools.cache
def replica_state() -> ReplicaState:
    """The state of this process's replica, opened on first use from the app's settings."""
    from pipeline.worker import settings

    return ReplicaState.open(settings)
