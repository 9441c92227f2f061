"""Restoring snapshots: every check refuses before anything is written, and a good one lands whole."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from replica.position import read_position
from replica.resume import LogProbe
from snapshot import restore as restore_module
from snapshot.create import open_database, write_snapshot
from snapshot.manifest import CorruptSnapshot, DatadirNotEmpty, LogMismatch, Manifest, SnapshotTooOld, WrongCluster
from snapshot.restore import restore_snapshot
from snapshot.store import list_snapshots, newest, prune, snapshot_name
from storage.leveldb import LevelDB
from tests.snapshot.conftest import CLUSTER, all_pairs, settings_for


def take(replica_db: Path, out: Path, fmt: str, now: float | None = None) -> Manifest:
    with open_database(replica_db / "chaindb") as db:
        return write_snapshot(db, out, fmt, cluster=CLUSTER, source_id="r1", now=now)


def restore(datadir: Path, source: Path, cluster: str = CLUSTER, **options: object):
    return asyncio.run(restore_snapshot(settings_for(datadir, cluster), source, check_log=False, **options))  # type: ignore[arg-type]


def untouched(datadir: Path) -> bool:
    return not datadir.exists() or not any(datadir.iterdir())


@pytest.mark.parametrize("fmt", ["dir", "tar.gz"])
def test_restore_lays_down_exactly_the_snapshotted_database(replica_db: Path, tmp_path: Path, fmt: str) -> None:
    snapshot = tmp_path / f"snap.{fmt}"
    manifest = take(replica_db, snapshot, fmt)
    restored = restore(tmp_path / "new", snapshot)
    assert restored.chaindb == tmp_path / "new" / "chaindb" and restored.manifest == manifest
    assert all_pairs(restored.chaindb) == all_pairs(replica_db / "chaindb")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["chaindb"]


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["gzip-header-mtime", "start", "middle", "three-quarters", "gzip-crc", "last-byte"])
def test_restore_refuses_an_archive_with_any_flipped_byte(replica_db: Path, tmp_path: Path, where: str) -> None:
    snapshot = tmp_path / "snap.tar.gz"
    take(replica_db, snapshot, "tar.gz")
    size = snapshot.stat().st_size
    flip(snapshot, {"gzip-header-mtime": 5, "start": 12, "middle": size // 2, "three-quarters": size * 3 // 4,
                    "gzip-crc": size - 6, "last-byte": size - 1}[where])
    with pytest.raises(CorruptSnapshot, match="damaged|checksum|not an ethercattle snapshot"):
        restore(tmp_path / "new", snapshot)
    assert untouched(tmp_path / "new")


def test_restore_refuses_a_directory_snapshot_with_a_flipped_byte_in_data_or_manifest(replica_db: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snap"
    take(replica_db, snapshot, "dir")
    table = next(p for p in (snapshot / "chaindb").iterdir() if p.suffix in (".ldb", ".log") and p.stat().st_size > 100)
    original = table.read_bytes()
    flip(table, len(original) // 2)
    with pytest.raises(CorruptSnapshot, match=f"{table.name} does not match its checksum"):
        restore(tmp_path / "new", snapshot)
    assert untouched(tmp_path / "new")

    table.write_bytes(original)
    manifest = (snapshot / "manifest.json").read_bytes()
    offset_at = manifest.index(b'"next_offset": 50') + len(b'"next_offset": 5')
    (snapshot / "manifest.json").write_bytes(manifest[:offset_at] + b"1" + manifest[offset_at + 1 :])
    with pytest.raises(CorruptSnapshot, match="manifest checksum mismatch"):
        restore(tmp_path / "new", snapshot)
    assert untouched(tmp_path / "new")


def test_restore_refuses_a_snapshot_of_another_cluster(replica_db: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snap.tar.gz"
    take(replica_db, snapshot, "tar.gz")
    with pytest.raises(WrongCluster, match=f"belongs to cluster '{CLUSTER}', not 'other'") as refused:
        restore(tmp_path / "new", snapshot, cluster="other")
    assert (refused.value.expected, refused.value.found) == ("other", CLUSTER)
    assert untouched(tmp_path / "new")


def test_restore_never_overwrites_a_datadir_unless_asked_to_keep_it(replica_db: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snap"
    take(replica_db, snapshot, "dir")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "something").write_text("x")
    with pytest.raises(DatadirNotEmpty, match="never overwrites"):
        restore(tmp_path / "busy", snapshot)
    with pytest.raises(DatadirNotEmpty):
        restore(replica_db, snapshot)
    kept = restore(replica_db, snapshot, keep_existing=True)
    assert kept.skipped and kept.manifest is None


def fake_probe(earliest: int, previous: bytes | None = None, end: int = 10_000):
    async def probe_for(settings, position, timeout=15.0):  # noqa: ANN001, ANN202 - stands in for snapshot.logpos.probe_for
        return LogProbe(partitions=1, earliest=earliest, end=end, previous=previous)

    return probe_for


def test_restore_refuses_a_snapshot_older_than_the_logs_earliest_offset_with_its_age(
    replica_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "snap.tar.gz"
    take(replica_db, snapshot, "tar.gz", now=time.time() - 2 * 3600 - 5 * 60)
    monkeypatch.setattr(restore_module, "probe_for", fake_probe(earliest=80))
    with pytest.raises(SnapshotTooOld) as refused:
        asyncio.run(restore_snapshot(settings_for(tmp_path / "new"), snapshot))
    message = str(refused.value)
    assert "too old" in message and "taken 2h 5m ago" in message
    assert "offset 50" in message and "before offset 80 (30 messages)" in message
    assert (refused.value.offset, refused.value.earliest) == (50, 80) and refused.value.age_seconds > 7000
    assert untouched(tmp_path / "new")


def test_restore_refuses_a_snapshot_the_log_does_not_continue(replica_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = tmp_path / "snap"
    take(replica_db, snapshot, "dir")
    monkeypatch.setattr(restore_module, "probe_for", fake_probe(earliest=0, previous=b"another log's message".ljust(64, b"!")))
    with pytest.raises(LogMismatch, match="is not the one this database applied there"):
        asyncio.run(restore_snapshot(settings_for(tmp_path / "new"), snapshot))
    assert untouched(tmp_path / "new")


def test_restore_accepts_a_snapshot_the_log_still_holds(replica_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_log) -> None:  # noqa: ANN001
    snapshot = tmp_path / "snap"
    take(replica_db, snapshot, "dir")
    monkeypatch.setattr(restore_module, "probe_for", fake_probe(earliest=49, previous=fake_log.messages[49]))
    restored = asyncio.run(restore_snapshot(settings_for(tmp_path / "new"), snapshot))
    with LevelDB(restored.chaindb, create=False) as db:
        assert read_position(db).next_offset == 50


def test_store_names_sort_by_offset_newest_wins_and_prune_keeps_n(replica_db: Path, tmp_path: Path, fake_log) -> None:  # noqa: ANN001
    store = tmp_path / "store"
    first = take(replica_db, store / snapshot_name(CLUSTER, 50, 500, "r1", "tar.gz"), "tar.gz")
    with LevelDB(replica_db / "chaindb") as db:
        fake_log.append(100)
        fake_log.apply_to(db, start=50)
    second = take(replica_db, store / snapshot_name(CLUSTER, 60, 600, "r2", "dir"), "dir")
    (store / "x.tar.gz.partial").write_bytes(b"half")
    assert [s.manifest.next_offset for s in list_snapshots(store, CLUSTER)] == [first.next_offset, second.next_offset] == [50, 60]
    assert newest(store, CLUSTER).manifest == second  # type: ignore[union-attr]
    assert newest(store, "other") is None

    restored = restore(tmp_path / "new", store)
    assert restored.manifest == second

    abandoned = store / f"{CLUSTER}-x.partial"
    abandoned.write_bytes(b"half")
    os.utime(abandoned, (time.time() - 2 * 86400,) * 2)
    assert prune(store, CLUSTER, keep=1) == [store / snapshot_name(CLUSTER, 50, 500, "r1", "tar.gz"), abandoned]
    assert [s.manifest for s in list_snapshots(store)] == [second]
    assert (store / "x.tar.gz.partial").exists()  # another cluster's, and fresh: left alone


def test_restore_from_a_store_falls_back_when_the_newest_is_damaged(replica_db: Path, tmp_path: Path, fake_log) -> None:  # noqa: ANN001
    store = tmp_path / "store"
    older = take(replica_db, store / snapshot_name(CLUSTER, 50, 500, "r1", "dir"), "dir")
    with LevelDB(replica_db / "chaindb") as db:
        fake_log.append(100)
        fake_log.apply_to(db, start=50)
    damaged = store / snapshot_name(CLUSTER, 60, 600, "r1", "dir")
    take(replica_db, damaged, "dir")
    for table in (damaged / "chaindb").iterdir():
        if table.stat().st_size > 100:
            flip(table, 200)
    restored = restore(tmp_path / "new", store)
    assert restored.manifest == older
    assert os.path.exists(damaged)
