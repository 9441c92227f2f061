"""A directory of snapshots: names, the newest one, pruning to the newest N.

Names sort by log position: ``<cluster>-<next offset>-<sequence>-<source>``
(12-digit zero-padded numbers), plus ``.tar.gz`` for archives. Several
replicas may share one directory (a shared volume): each writes under its own
name, the newest is the one furthest along the log, and pruning keeps the
newest N of the cluster whoever wrote them. Unfinished snapshots end in
``.partial`` and are never listed.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from snapshot.archive import read_manifest
from snapshot.manifest import TAR_SUFFIX, Manifest, SnapshotError

log = logging.getLogger("ethercattle.snapshot")

# An unfinished snapshot untouched for this long was abandoned by a process that died.
STALE_PARTIAL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Stored:
    path: Path
    manifest: Manifest

    @property
    def order(self) -> tuple[int, int, float]:
        return (self.manifest.next_offset, self.manifest.sequence, self.manifest.created)


def snapshot_name(cluster: str, next_offset: int, sequence: int, source_id: str, fmt: str) -> str:
    suffix = TAR_SUFFIX if fmt == "tar.gz" else ""
    return f"{cluster}-{next_offset:012d}-{sequence:012d}-{source_id}{suffix}"


def is_snapshot_store(path: Path) -> bool:
    """A directory that holds snapshots (rather than being one)."""
    return path.is_dir() and not (path / "manifest.json").exists()


def list_snapshots(directory: Path, cluster: str | None = None) -> list[Stored]:
    """Readable snapshots in ``directory`` (of ``cluster``), oldest first; damaged manifests are skipped with a warning."""
    found: list[Stored] = []
    if not directory.is_dir():
        return found
    for path in sorted(directory.iterdir()):
        if ".partial" in path.name or path.name.startswith("."):
            continue
        if not (path.is_dir() or path.name.endswith(TAR_SUFFIX)):
            continue
        try:
            manifest = read_manifest(path)
        except (SnapshotError, OSError) as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        if cluster is None or manifest.cluster == cluster:
            found.append(Stored(path, manifest))
    return sorted(found, key=lambda stored: stored.order)


def newest(directory: Path, cluster: str) -> Stored | None:
    snapshots = list_snapshots(directory, cluster)
    return snapshots[-1] if snapshots else None


def prune(directory: Path, cluster: str, keep: int, now: float | None = None) -> list[Path]:
    """Remove all but the newest ``keep`` snapshots of ``cluster``, and unfinished ones left for a day; the paths removed."""
    snapshots = list_snapshots(directory, cluster)
    doomed = [stored.path for stored in snapshots[: max(len(snapshots) - keep, 0)]]
    cutoff = (time.time() if now is None else now) - STALE_PARTIAL_SECONDS
    doomed += [path for path in directory.glob(f"{cluster}-*.partial*") if _mtime(path) < cutoff]
    removed = []
    for path in doomed:
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:  # another replica sharing the directory pruned it first
            continue
        removed.append(path)
        log.info("pruned snapshot %s", path.name)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")
