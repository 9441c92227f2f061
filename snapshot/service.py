"""Snapshots inside a running replica: one job at a time, on demand or on a schedule, and their status.

The worker's web endpoint and its timer (``agents/snapshots.py``) both go
through ``Snapshotter``, which copies a LevelDB snapshot of the live database
in a thread while the apply agent keeps writing and the RPC keeps reading.

``Snapshotter.status`` is this replica's snapshot state for its status endpoint:
the newest snapshot's offset, how far it stands ahead of the oldest offset
Kafka still holds (``retention_headroom`` messages, and as a fraction of the
retained log, ``retention_headroom_ratio``), and ``retention_at_risk`` when
that fraction falls below ``ETHERCATTLE_SNAPSHOT_RETENTION_MARGIN``: the
newest snapshot is about to become useless for starting new replicas.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cluster.settings import Settings
from replica.state import ReplicaState
from snapshot.create import write_snapshot
from snapshot.logpos import earliest_offset
from snapshot.manifest import FORMATS, Manifest, SnapshotError
from snapshot.progress import Progress
from snapshot.store import newest, prune, snapshot_name

log = logging.getLogger("ethercattle.snapshot")


@dataclass
class SnapshotStatus:
    """This process's snapshots, for metrics: every field a plain number, string, bool or None."""

    snapshots_taken: int = 0
    failures: int = 0
    last_path: str | None = None
    last_offset: int | None = None
    last_sequence: int | None = None
    last_created: float | None = None
    last_duration: float | None = None
    last_error: str | None = None
    newest_offset: int | None = None
    """Offset of the newest snapshot in the snapshot directory (any replica's)."""
    earliest_offset: int | None = None
    log_end: int | None = None
    retention_headroom: int | None = None
    """Messages between Kafka's earliest offset and the newest snapshot's offset (negative: it has left)."""
    retention_headroom_ratio: float | None = None
    retention_at_risk: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RetentionAssessment:
    headroom: int
    ratio: float
    at_risk: bool
    message: str


def assess_retention(snapshot_offset: int, earliest: int, log_end: int | None, margin: float) -> RetentionAssessment:
    """How close the newest snapshot is to falling out of Kafka's retention.

    With time-based retention the retained log spans the retention period, so
    the snapshot's place in it (``ratio``: 0 at the earliest offset, 1 at the
    end) is the share of the retention period it has left. At risk below
    ``margin``; already gone below 0.
    """
    end = max(log_end if log_end is not None else snapshot_offset, snapshot_offset, earliest)
    headroom = snapshot_offset - earliest
    ratio = headroom / max(end - earliest, 1) if end > earliest else 1.0
    if headroom < 0:
        message = (
            f"the newest snapshot (offset {snapshot_offset}) has left Kafka's retention (earliest offset {earliest}): "
            f"no new replica can start from it. Take a snapshot now."
        )
        return RetentionAssessment(headroom, ratio, True, message)
    if ratio < margin:
        message = (
            f"the newest snapshot (offset {snapshot_offset}) is only {headroom} messages ahead of Kafka's earliest offset "
            f"{earliest} ({ratio:.0%} of the retained log, warning below {margin:.0%}): it will soon be too old to start "
            f"replicas from. Check that snapshots are being taken."
        )
        return RetentionAssessment(headroom, ratio, True, message)
    return RetentionAssessment(headroom, ratio, False, "")


@dataclass
class Job:
    id: str
    out: str
    fmt: str
    started: float = field(default_factory=time.time)
    state: str = "running"
    error: str | None = None
    manifest: Manifest | None = None
    progress: Progress = field(default_factory=Progress.null)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "out": self.out, "format": self.fmt, "state": self.state, "started": self.started,
            "error": self.error,
            "manifest": None if self.manifest is None else json.loads(self.manifest.to_json()),
            "progress": {"label": self.progress.label.strip(), "unit": self.progress.unit, "done": self.progress.done, "total": self.progress.total},
        }


class Busy(SnapshotError):
    """A snapshot is already being written by this process."""


_ids = itertools.count(1)


class Snapshotter:
    """Takes this replica's snapshots, one at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.directory = settings.snapshot_dir or settings.datadir / "snapshots"
        self.job: Job | None = None
        self.status = SnapshotStatus()
        self._lock = asyncio.Lock()

    def resolve_out(self, out: str) -> Path:
        """Absolute paths as given; relative ones under the snapshot directory."""
        path = Path(out)
        if not out or path.name in ("", ".", ".."):
            raise SnapshotError(f"{out!r} is not a snapshot path")
        if not path.is_absolute():
            path = self.directory / path
        if path.resolve().is_relative_to(self.settings.chaindb.resolve()):
            raise SnapshotError(f"{path} is inside the database being snapshotted")
        if path.exists():
            raise SnapshotError(f"{path} exists already; snapshots are never overwritten")
        return path

    def start(self, replica: ReplicaState, out: str, fmt: str) -> Job:
        """Start a snapshot job in the background; ``Busy`` if one runs, ``SnapshotError`` for a bad request."""
        if fmt not in FORMATS:
            raise SnapshotError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
        if self._lock.locked():
            raise Busy(f"a snapshot is being written already ({self.job.out if self.job else '?'})")
        path = self.resolve_out(out)
        job = Job(f"{int(time.time())}-{next(_ids)}", str(path), fmt)
        self.job = job
        asyncio.get_running_loop().create_task(self._run(replica, job, path), name=f"snapshot {job.id}")
        return job

    async def _run(self, replica: ReplicaState, job: Job, path: Path) -> None:
        try:
            job.manifest = await self.take(replica, path, job.fmt, job.progress)
            job.state = "done"
        except Exception as exc:  # reported to the caller through the job
            job.state, job.error = "failed", str(exc)

    async def take(self, replica: ReplicaState, path: Path, fmt: str, progress: Progress | None = None) -> Manifest:
        """Write one snapshot of the live database (in a thread), and record it in ``status``."""
        async with self._lock:
            started = time.monotonic()
            try:
                manifest = await asyncio.to_thread(
                    write_snapshot, replica.db, path, fmt,
                    cluster=self.settings.cluster, source_id=self.settings.replica_id or "replica", progress=progress,
                )
            except Exception as exc:
                self.status.failures += 1
                self.status.last_error = f"{path}: {exc}"
                log.error("snapshot %s failed: %s", path, exc)
                raise
            self.status.snapshots_taken += 1
            self.status.last_path, self.status.last_offset, self.status.last_sequence = str(path), manifest.next_offset, manifest.sequence
            self.status.last_created, self.status.last_duration = manifest.created, time.monotonic() - started
            self.status.last_error = None
            log.info("snapshot %s written in %.2fs: %s", path, self.status.last_duration, manifest.summary())
            return manifest

    async def tick(self, replica: ReplicaState) -> Manifest | None:
        """The scheduled step: a snapshot if the log moved since the newest one, pruning, and the retention check."""
        manifest = None
        try:
            manifest = await self._scheduled(replica)
        except Busy:
            log.info("scheduled snapshot skipped: another snapshot is being written")
        except Exception as exc:  # the timer must go on; take() has counted a failed write
            log.error("scheduled snapshot failed: %s", exc)
        try:
            await self.check_retention(replica)
        except SnapshotError as exc:
            log.warning("could not check the newest snapshot against Kafka's retention: %s", exc)
        return manifest

    async def _scheduled(self, replica: ReplicaState) -> Manifest | None:
        if replica.halted is not None:
            log.warning("no scheduled snapshot: this replica halted (%s)", replica.halted)
            return None
        if not (replica.resumed and replica.caught_up):
            return None
        if self._lock.locked():
            raise Busy("a snapshot is being written already")
        position = replica.applier.position
        current = await asyncio.to_thread(newest, self.directory, self.settings.cluster)
        if current is not None and current.manifest.next_offset >= position.next_offset:
            return None
        name = snapshot_name(self.settings.cluster, position.next_offset, position.sequence,
                             self.settings.replica_id or "replica", self.settings.snapshot_format)
        manifest = await self.take(replica, self.directory / name, self.settings.snapshot_format)
        await asyncio.to_thread(prune, self.directory, self.settings.cluster, self.settings.snapshot_keep)
        return manifest

    async def check_retention(self, replica: ReplicaState) -> RetentionAssessment | None:
        current = await asyncio.to_thread(newest, self.directory, self.settings.cluster)
        if current is None:
            self.status.newest_offset = None
            return None
        earliest = await earliest_offset(self.settings)
        assessment = assess_retention(current.manifest.next_offset, earliest, replica.log_end, self.settings.snapshot_retention_margin)
        self.status.newest_offset, self.status.earliest_offset, self.status.log_end = current.manifest.next_offset, earliest, replica.log_end
        self.status.retention_headroom, self.status.retention_headroom_ratio = assessment.headroom, round(assessment.ratio, 4)
        self.status.retention_at_risk = assessment.at_risk
        if assessment.at_risk:
            (log.error if assessment.headroom < 0 else log.warning)("%s", assessment.message)
        return assessment

