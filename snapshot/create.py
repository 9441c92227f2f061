"""Writing a snapshot: a LevelDB point-in-time view copied into a new LevelDB, plus a manifest.

A running replica cannot be copied file by file (LevelDB rewrites its files as
it compacts), and a second process cannot open it (the lock). Instead the
process that holds the database takes ``db.snapshot()``, a consistent view at
one instant, and copies its pairs in key order into a fresh LevelDB. The apply
agent writes every group of records together with its offset and sequence in
one write batch, so any snapshot of it holds a position and exactly the data
up to that position. Applying and serving go on meanwhile; the copy runs in a
thread when called from the worker.

A master's database holds no log offset (the master never reads the log), so
a master snapshot is given its position by ``logpos.locate_master_position``
and carries the replica bookkeeping a restored replica resumes from; the
master's own bookkeeping (sequence counter, journal) is left out.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Protocol

import plyvel

from chain.head import read_head
from replica.position import Position
from snapshot.archive import fsync_dir, hash_file, write_archive, write_file
from snapshot.manifest import (
    DB_DIR,
    FORMATS,
    MANIFEST_NAME,
    DatabaseInUse,
    FileEntry,
    Head,
    Manifest,
    SnapshotError,
    WrongCluster,
    utc_now_iso,
)
from snapshot.progress import Progress
from storage import keys
from storage.leveldb import LevelDB

# LevelDB's lock and info logs are not part of the data.
SKIPPED_FILES = frozenset({"LOCK", "LOG", "LOG.old"})
BATCH_BYTES = 4 * 1024 * 1024


class View(Protocol):
    """What a plyvel snapshot offers: reads and an ordered iterator at one instant."""

    def get(self, key: bytes) -> bytes | None: ...

    def iterator(self) -> "plyvel.Iterator": ...


def open_database(chaindb: Path) -> LevelDB:
    """Open a stopped node's database for a snapshot; ``DatabaseInUse`` if a process holds it."""
    if not (chaindb / "CURRENT").exists():
        raise SnapshotError(f"{chaindb} holds no LevelDB database: nothing to snapshot")
    try:
        return LevelDB(chaindb, create=False)
    except plyvel.IOError as exc:
        if "lock" in str(exc):
            raise DatabaseInUse(
                f"{chaindb} is locked by a running process. Snapshot a running replica through its web port "
                f"(ethercattle snapshot create --url http://HOST:PORT ...) or stop the process first; a master "
                f"must be stopped to be snapshotted."
            ) from None
        raise


def partial_path(out: Path) -> Path:
    """Where a snapshot is written before it is renamed into place (never listed as a snapshot)."""
    return out.with_name(out.name + ".partial")


def write_snapshot(
    db: LevelDB,
    out: Path,
    fmt: str,
    *,
    cluster: str,
    source_id: str,
    master_position: Position | None = None,
    progress: Progress | None = None,
    now: float | None = None,
) -> Manifest:
    """Write a consistent snapshot of ``db`` to ``out`` (a directory or a ``.tar.gz``); return its manifest.

    Raises ``SnapshotError`` (``WrongCluster`` for a database of another
    cluster) and never leaves a half-written snapshot at ``out``.
    """
    if fmt not in FORMATS:
        raise SnapshotError(f"unknown snapshot format {fmt!r} (one of {', '.join(FORMATS)})")
    out = Path(out)
    if out.exists():
        raise SnapshotError(f"{out} exists already; snapshots are never overwritten")
    out.parent.mkdir(parents=True, exist_ok=True)
    progress = progress or Progress.null()
    partial = partial_path(out)
    workdir = partial if fmt == "dir" else out.with_name(out.name + ".partial.d")
    for stale in (partial, workdir):
        _remove(stale)
    try:
        view = db.snapshot()
        created_at = utc_now_iso(now)
        try:
            source, position = _source(view, cluster, master_position)
            count, state_sha = _copy(view, workdir / DB_DIR, source, position, cluster, progress)
        finally:
            view.release()
        head = _head(workdir / DB_DIR)
        files = _hash_files(workdir / DB_DIR, progress)
        manifest = Manifest(
            cluster=cluster,
            source=source,
            source_id=source_id,
            next_offset=position.next_offset,
            sequence=position.sequence,
            last_message_mac=position.last_message_mac.hex(),
            head=head,
            created_at=created_at,
            keys=count,
            state_sha256=state_sha,
            files=files,
        ).sealed()
        if fmt == "dir":
            write_file(workdir / MANIFEST_NAME, manifest.to_json())
            fsync_dir(workdir)
        else:
            write_archive(workdir, manifest, partial, progress)
            _remove(workdir)
        os.replace(partial, out)
        fsync_dir(out.parent)
    except BaseException:
        _remove(partial)
        _remove(workdir)
        raise
    finally:
        progress.close()
    return manifest


def _source(view: View, cluster: str, master_position: Position | None) -> tuple[str, Position]:
    """Which kind of database this is and the position a restored replica resumes from."""
    stored_cluster = view.get(keys.CLUSTER)
    if stored_cluster is not None and stored_cluster.decode() != cluster:
        raise WrongCluster(
            f"this database follows cluster {stored_cluster.decode()!r}, not {cluster!r} (ETHERCATTLE_CLUSTER)",
            expected=cluster, found=stored_cluster.decode(),
        )
    if view.get(keys.NEXT_OFFSET) is not None:
        return "replica", Position(
            sequence=keys.decode_int(view.get(keys.APPLIED_SEQUENCE)),
            next_offset=keys.decode_int(view.get(keys.NEXT_OFFSET)),
            last_message_mac=view.get(keys.LAST_MESSAGE_MAC) or b"",
        )
    master_sequence = view.get(keys.MASTER_SEQUENCE)
    if master_sequence is None:
        raise SnapshotError("the database holds neither a replica's position nor a master's sequence: nothing to snapshot")
    if master_position is None:
        raise SnapshotError("a master's database has no log offset: its snapshot needs the position located in the log")
    if master_position.sequence != keys.decode_int(master_sequence):
        raise SnapshotError(
            f"the master's database is at record {keys.decode_int(master_sequence)} but its position was located for "
            f"record {master_position.sequence}: was the master running? Stop it and snapshot again."
        )
    return "master", master_position


def _copy(view: View, target: Path, source: str, position: Position, cluster: str, progress: Progress) -> tuple[int, str]:
    """Copy the view's pairs into a new LevelDB in batches; (pairs written, state hash)."""
    state = hashlib.sha256()
    count = size = 0
    progress.phase("snapshot", unit="keys")
    target.parent.mkdir(parents=True, exist_ok=True)
    new = plyvel.DB(str(target), create_if_missing=True, error_if_exists=True, write_buffer_size=16 * 1024 * 1024)
    try:
        batch = new.write_batch()
        pending = 0
        for key, value in view.iterator():
            if keys.is_bookkeeping(key):
                if source == "master":
                    continue  # the master's counter and journal; replica bookkeeping is added below
            else:
                state.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
            batch.put(key, value)
            count += 1
            pending += len(key) + len(value)
            size += len(key) + len(value)
            if pending >= BATCH_BYTES:
                batch.write()
                batch = new.write_batch()
                pending = 0
                progress.update(count, detail=f"{size / 1e6:.1f} MB read")
        extra: list[tuple[bytes, bytes | None]] = []
        if source == "master":
            extra = [*position.operations(), (keys.CLUSTER, cluster.encode())]
        elif view.get(keys.CLUSTER) is None:
            extra = [(keys.CLUSTER, cluster.encode())]
        for key, value in extra:
            assert value is not None
            batch.put(key, value)
            count += 1
        batch.write()
        progress.update(count, detail=f"{size / 1e6:.1f} MB read")
    finally:
        new.close()
    return count, state.hexdigest()


def _head(chaindb: Path) -> Head | None:
    with LevelDB(chaindb, create=False) as db:
        head = read_head(db)
    return None if head is None else Head(head.number, "0x" + head.hash.hex(), head.timestamp)


def _hash_files(chaindb: Path, progress: Progress) -> tuple[FileEntry, ...]:
    """SHA-256 of every data file (LevelDB's lock and info logs removed), fsynced on the way."""
    for name in SKIPPED_FILES:
        (chaindb / name).unlink(missing_ok=True)
    paths = sorted(path for path in chaindb.iterdir() if path.is_file())
    progress.phase("checksum", sum(p.stat().st_size for p in paths))
    entries = tuple(FileEntry(f"{DB_DIR}/{path.name}", path.stat().st_size, hash_file(path, progress)) for path in paths)
    fsync_dir(chaindb)
    return entries


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
