"""Laying a snapshot down as a new replica's database, after every check that can refuse it.

Order of checks, cheapest first, all before anything is written: the
manifest's checksum and format version, its cluster against
``ETHERCATTLE_CLUSTER``, the datadir being empty, and the log still
continuing the snapshot (retention, same log). Then the files are copied or
extracted into a hidden directory beside ``chaindb`` with every file's hash
verified, the database's own bookkeeping is compared with the manifest, and
only then is it renamed to ``DATADIR/chaindb``. A restore that fails leaves
the datadir as it found it.

Given a directory of snapshots instead of one, restore takes the newest
snapshot of the cluster, and falls back to the next one if the newest turns
out to be damaged.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from cluster.settings import Settings
from cluster.topics import TopicNames
from replica.position import read_position
from snapshot.archive import extract, read_manifest
from snapshot.logpos import check_snapshot_against_log, manifest_position, probe_for
from snapshot.manifest import DB_DIR, CorruptSnapshot, DatadirNotEmpty, Manifest, SnapshotError, WrongCluster
from snapshot.progress import Progress
from snapshot.store import is_snapshot_store, list_snapshots
from storage import keys
from storage.leveldb import LevelDB

log = logging.getLogger("ethercattle.snapshot")

IGNORED_IN_DATADIR = frozenset({"lost+found"})


@dataclass(frozen=True)
class Restored:
    """What a restore did: the snapshot laid down (or found already there)."""

    source: Path
    manifest: Manifest | None
    chaindb: Path
    skipped: bool = False


def check_cluster(manifest: Manifest, cluster: str, where: str) -> None:
    if manifest.cluster != cluster:
        raise WrongCluster(
            f"snapshot {where} belongs to cluster {manifest.cluster!r}, not {cluster!r} (ETHERCATTLE_CLUSTER): "
            f"a replica restored from it would not fit this cluster's log",
            expected=cluster, found=manifest.cluster,
        )


def datadir_contents(datadir: Path) -> list[str]:
    """What the datadir holds that a restore could clash with."""
    if not datadir.exists():
        return []
    return sorted(
        entry.name for entry in datadir.iterdir() if entry.name not in IGNORED_IN_DATADIR and not entry.name.startswith(".restore-")
    )


def check_datadir(datadir: Path) -> None:
    contents = datadir_contents(datadir)
    if contents:
        raise DatadirNotEmpty(
            f"{datadir} is not empty ({', '.join(contents[:5])}{' ...' if len(contents) > 5 else ''}): restore never "
            f"overwrites a database. Point ETHERCATTLE_DATADIR at an empty directory, or remove this one first."
        )


def candidates(source: Path, cluster: str) -> list[Path]:
    """The snapshots to try, best first: ``source`` itself, or a store's snapshots of the cluster, newest first."""
    if not source.exists():
        raise SnapshotError(f"{source}: no such snapshot or snapshot directory")
    if is_snapshot_store(source):
        found = [stored.path for stored in reversed(list_snapshots(source, cluster))]
        if not found:
            raise SnapshotError(f"{source} holds no snapshot of cluster {cluster!r}")
        return found
    return [source]


def lay_down(path: Path, manifest: Manifest, datadir: Path, progress: Progress) -> Path:
    """Extract and verify into a hidden directory, check the database's bookkeeping, rename into place."""
    datadir.mkdir(parents=True, exist_ok=True)
    staging = datadir / f".restore-{uuid.uuid4().hex[:8]}"
    try:
        extract(path, manifest, staging, progress)
        _check_bookkeeping(staging / DB_DIR, manifest, path)
        target = datadir / DB_DIR
        os.rename(staging / DB_DIR, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_bookkeeping(chaindb: Path, manifest: Manifest, where: Path) -> None:
    with LevelDB(chaindb, create=False) as db:
        position = read_position(db)
        cluster = (db.get_raw(keys.CLUSTER) or b"").decode()
    if position != manifest_position(manifest) or cluster != manifest.cluster:
        raise CorruptSnapshot(
            f"{where}: the database says cluster {cluster!r} at offset {position.next_offset}, record {position.sequence}; "
            f"the manifest says cluster {manifest.cluster!r} at offset {manifest.next_offset}, record {manifest.sequence}"
        )


async def restore_snapshot(
    settings: Settings,
    source: Path,
    *,
    check_log: bool = True,
    keep_existing: bool = False,
    progress: Progress | None = None,
) -> Restored:
    """Restore ``source`` (a snapshot, or a directory of them) into ``settings.datadir``.

    Raises ``SnapshotError`` subclasses: ``CorruptSnapshot``, ``WrongCluster``,
    ``DatadirNotEmpty``, ``SnapshotTooOld``, ``LogMismatch``, ``BrokerUnreachable``.
    With ``keep_existing``, a datadir that already holds a chain database is
    left alone (for an init container that runs again on a restarted pod).
    """
    progress = progress or Progress.null()
    chaindb = settings.datadir / DB_DIR
    if keep_existing and (chaindb / "CURRENT").exists():
        log.info("%s already holds a database; keeping it (the replica resumes from its own position)", chaindb)
        return Restored(source, None, chaindb, skipped=True)
    check_datadir(settings.datadir)
    topic = TopicNames(settings.cluster).cdc
    options = candidates(Path(source), settings.cluster)
    for index, path in enumerate(options):
        try:
            manifest = read_manifest(path)
            check_cluster(manifest, settings.cluster, str(path))
            if check_log:
                probe = await probe_for(settings, manifest_position(manifest))
                check_snapshot_against_log(manifest, probe, topic, str(path))
            target = lay_down(path, manifest, settings.datadir, progress)
        except CorruptSnapshot as damaged:
            if index + 1 < len(options):
                log.error("%s; trying the next newest snapshot", damaged)
                continue
            raise
        finally:
            progress.close()
        log.info("restored %s into %s: %s", path, target, manifest.summary())
        return Restored(path, manifest, target)
    raise AssertionError("unreachable: candidates() never returns an empty list")
