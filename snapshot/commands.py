"""The ``ethercattle snapshot ...`` commands: create, restore, list.

Each returns the process's exit status: 0 done, 1 refused (the message on
stderr says why and what to do).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from cluster.settings import Settings
from snapshot.create import open_database, write_snapshot
from snapshot.logpos import locate_master_position
from snapshot.manifest import Manifest, SnapshotError, format_age, parse_manifest
from snapshot.progress import Progress
from snapshot.restore import restore_snapshot
from snapshot.store import list_snapshots
from storage import keys


def _fail(exc: SnapshotError) -> int:
    print(f"ethercattle snapshot: {exc}", file=sys.stderr)
    return 1


def _report(verb: str, path: Path | str, manifest: Manifest) -> None:
    print(f"{verb} {path}")
    print(f"  {manifest.summary()}")
    print(f"  checksum {manifest.checksum}  state {manifest.state_sha256}")


def snapshot_local(settings: Settings, out: Path, fmt: str, quiet: bool = False) -> Manifest:
    """Snapshot the stopped node at ``settings.datadir`` (replica or master) to ``out``."""
    db = open_database(settings.chaindb)
    try:
        is_master = db.get_raw(keys.NEXT_OFFSET) is None and db.get_raw(keys.MASTER_SEQUENCE) is not None
        position = None
        if is_master:
            sequence = keys.decode_int(db.get_raw(keys.MASTER_SEQUENCE))
            position = asyncio.run(locate_master_position(settings, sequence, Progress("locate", unit="messages", quiet=quiet)))
        source_id = settings.master_id if is_master else (settings.replica_id or "replica")
        return write_snapshot(
            db, out, fmt, cluster=settings.cluster, source_id=source_id, master_position=position,
            progress=Progress("snapshot", unit="keys", quiet=quiet),
        )
    finally:
        db.close()


def create(settings: Settings, out: str, fmt: str, url: str | None) -> int:
    try:
        if url:
            from snapshot.remote import request_snapshot

            body = request_snapshot(url, settings.secret, settings.cluster, out, fmt, Progress("snapshot"))
            manifest = parse_manifest(json.dumps(body).encode(), url)
            where = f"{out} (by the replica at {url}, on its filesystem)"
        else:
            manifest = snapshot_local(settings, Path(out), fmt)
            where = out
    except SnapshotError as exc:
        return _fail(exc)
    _report("snapshot written:", where, manifest)
    return 0


def restore(settings: Settings, source: str, skip_log_check: bool, keep_existing: bool) -> int:
    try:
        restored = asyncio.run(
            restore_snapshot(settings, Path(source), check_log=not skip_log_check, keep_existing=keep_existing, progress=Progress("restore"))
        )
    except SnapshotError as exc:
        return _fail(exc)
    if restored.skipped:
        print(f"{restored.chaindb} already holds a database: kept it (--keep-existing)")
        return 0
    assert restored.manifest is not None
    _report(f"restored into {restored.chaindb} from", restored.source, restored.manifest)
    age = format_age(restored.manifest.age())
    print(f"  snapshot age {age}; start the replica: it catches up from offset {restored.manifest.next_offset}")
    return 0


def list_store(directory: str, cluster: str | None) -> int:
    found = list_snapshots(Path(directory), cluster)
    if not found:
        print(f"no snapshots in {directory}" + (f" for cluster {cluster}" if cluster else ""))
        return 0
    print(f"{'offset':>12} {'sequence':>10} {'head':>8} {'size':>10} {'age':>8}  path")
    for stored in reversed(found):
        m = stored.manifest
        print(f"{m.next_offset:>12} {m.sequence:>10} {m.head.number if m.head else '-':>8} "
              f"{m.size / 1e6:>8.1f}MB {format_age(m.age()):>8}  {stored.path}")
    return 0
