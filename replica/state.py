"""The live state of one replica process, shared by its agents and its web views.

Built once per worker by the composition root (``pipeline.worker``) and handed
to every piece that reads or writes it.

The apply agent is the only writer; views only read. The LevelDB handle, the
applier, what the last heartbeat said, how far the log reaches, and why the
replica halted (if it did) all live here, so readiness, metrics and the RPC
read one consistent picture without importing the agents.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from cluster.record import Authenticator, Heartbeat
from cluster.settings import Settings
from replica.applier import ApplyHalted, ApplyOutcome, Applier, Stray
from replica.catchup import SharedView
from storage.leveldb import LevelDB

AppliedListener = Callable[[ApplyOutcome], None]


@dataclass
class ReplicaState:
    settings: Settings
    db: LevelDB
    applier: Applier
    log_end: int | None = None  # next offset past the log's last message, as the consumer last saw it
    fetched_at: float | None = None  # wall-clock time the broker last answered a fetch of the CDC log
    applied_at: float | None = None  # wall-clock time the apply agent last wrote a group
    tail_heartbeat: Heartbeat | None = None  # newest heartbeat read at the log's end (ahead of `heartbeat` while catching up)
    sync_started_at_block: int | None = None  # head when the current catch-up began (eth_syncing's startingBlock)
    heartbeat: Heartbeat | None = None
    halted: ApplyHalted | None = None
    caught_up: bool = False  # reached the log's end at least once since start
    resumed: bool = False  # the stored position was checked and the consumer seeks there
    listeners: list[AppliedListener] = field(default_factory=list)
    rebased: list[Callable[[], None]] = field(default_factory=list)
    """Called when this replica continues on a re-based log: the master created the cluster's other topics anew
    too, so every reader of them starts over (positions on the lost topics mean nothing on the new ones)."""
    shared_views: dict[str, SharedView] = field(default_factory=dict)  # by name; each must load before the replica is ready
    records_applied: int = 0  # by this process, since it started
    duplicates_skipped: int = 0
    bytes_applied: int = 0
    strays_skipped: dict[str, int] = field(default_factory=dict)  # messages that are not part of the log, by reason
    last_stray: Stray | None = None

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
        self.applied_at = time.time()
        self.records_applied += outcome.records
        self.duplicates_skipped += outcome.duplicates
        self.bytes_applied += outcome.bytes
        for stray in outcome.strays:
            self.strays_skipped[stray.reason] = self.strays_skipped.get(stray.reason, 0) + 1
            self.last_stray = stray
        if outcome.heartbeat is not None:
            self.heartbeat = outcome.heartbeat
        for listener in self.listeners:
            listener(outcome)

    def observe_log_end(self, end: int | None, fetched_at: float | None = None) -> ApplyHalted | None:
        """Record the log's end; a log that now ends before what we applied was lost or reset.

        Returns the resulting halt (already set on the state) so the caller can log it.
        """
        if fetched_at is not None:
            self.fetched_at = max(self.fetched_at or 0.0, fetched_at)
        if end is None:
            return None
        self.log_end = end
        next_offset = self.applier.position.next_offset
        if end < next_offset and self.halted is None:
            self.halted = ApplyHalted(
                "log-reset", end,
                f"the log now ends at offset {end}, but this replica already applied up to offset {next_offset - 1}: "
                f"the broker lost or reset the log (a restarted local broker keeps nothing)",
            )
            return self.halted
        if self.lag == 0:
            self.caught_up = True
        return None

