"""Writing snapshots: consistent while the database is written, faithful, never half-written."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from replica.applier import Applier
from replica.position import Position, read_position
from snapshot.archive import read_manifest
from snapshot.create import open_database, partial_path, write_snapshot
from snapshot.manifest import DatabaseInUse, SnapshotError, WrongCluster
from storage import keys
from storage.leveldb import LevelDB
from tests.snapshot.conftest import CLUSTER, FakeLog, all_pairs, chain_pairs


def state_hash(pairs: dict[bytes, bytes]) -> str:
    digest = hashlib.sha256()
    for key in sorted(pairs):
        value = pairs[key]
        digest.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
    return digest.hexdigest()


@pytest.mark.parametrize("fmt", ["dir", "tar.gz"])
def test_snapshot_of_a_stopped_replica_holds_its_pairs_and_position(replica_db: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / ("snap.tar.gz" if fmt == "tar.gz" else "snap")
    with open_database(replica_db / "chaindb") as db:
        position = read_position(db)
        manifest = write_snapshot(db, out, fmt, cluster=CLUSTER, source_id="r1")

    if fmt == "dir":  # before anything opens the copy (opening a LevelDB rewrites its log)
        assert sorted(p.name for p in (out / "chaindb").iterdir()) == sorted(f.path.split("/")[1] for f in manifest.files)
    assert (manifest.cluster, manifest.source, manifest.source_id) == (CLUSTER, "replica", "r1")
    assert (manifest.next_offset, manifest.sequence) == (50, 500) == (position.next_offset, position.sequence)
    assert manifest.last_message_mac == position.last_message_mac.hex()
    assert manifest.keys == len(all_pairs(replica_db / "chaindb"))
    assert manifest.state_sha256 == state_hash(chain_pairs(replica_db / "chaindb"))
    assert read_manifest(out) == manifest and read_manifest(out).checksum == manifest.checksum
    assert not partial_path(out).exists()
    if fmt == "dir":
        assert all_pairs(out / "chaindb") == all_pairs(replica_db / "chaindb")


def test_snapshot_is_one_instant_while_the_applier_keeps_writing(tmp_path: Path) -> None:
    log = FakeLog()
    log.append(30_000, per_message=5)
    assert log.messages is not None
    with LevelDB(tmp_path / "live" / "chaindb") as db:
        applier = Applier(db, log.auth)
        applier.apply([(0, log.messages[0])])
        done = threading.Event()

        def keep_applying() -> None:
            for offset in range(1, len(log.messages)):
                applier.apply([(offset, log.messages[offset])])
            done.set()

        writer = threading.Thread(target=keep_applying)
        writer.start()
        manifests = []
        while not done.is_set():
            manifests.append(write_snapshot(db, tmp_path / f"s{len(manifests)}", "dir", cluster=CLUSTER, source_id="r1"))
        writer.join()

    assert any(0 < m.sequence < 30_000 for m in manifests), "no snapshot was taken while records were applied"
    for index, manifest in enumerate(manifests):
        pairs = chain_pairs(tmp_path / f"s{index}" / "chaindb")
        # Exactly the records up to the stored sequence: each record adds one key and points b"last" at it.
        assert len(pairs) == manifest.sequence + 1
        assert pairs[b"last"] == b"key-%08d" % manifest.sequence
        assert manifest.next_offset == manifest.sequence // 5


def test_snapshot_of_a_database_in_use_is_refused_with_what_to_do(replica_db: Path) -> None:
    with LevelDB(replica_db / "chaindb"):
        with pytest.raises(DatabaseInUse, match="--url http://HOST:PORT"):
            open_database(replica_db / "chaindb")


def test_snapshot_of_another_clusters_database_is_refused(replica_db: Path, tmp_path: Path) -> None:
    with open_database(replica_db / "chaindb") as db, pytest.raises(WrongCluster):
        write_snapshot(db, tmp_path / "s", "dir", cluster="someone-else", source_id="r1")
    assert not (tmp_path / "s").exists() and not partial_path(tmp_path / "s").exists()


def test_snapshot_never_overwrites(replica_db: Path, tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    with open_database(replica_db / "chaindb") as db, pytest.raises(SnapshotError, match="never overwritten"):
        write_snapshot(db, tmp_path / "s", "dir", cluster=CLUSTER, source_id="r1")


def test_master_snapshot_drops_master_bookkeeping_and_carries_the_located_position(tmp_path: Path, fake_log: FakeLog) -> None:
    assert fake_log.messages is not None
    with LevelDB(tmp_path / "replica" / "chaindb") as replica:
        fake_log.apply_to(replica)
        replica_position = read_position(replica)
    master_dir = tmp_path / "master" / "chaindb"
    with LevelDB(master_dir) as master:
        master.write([*chain_pairs(tmp_path / "replica" / "chaindb").items(),
                      (keys.MASTER_SEQUENCE, keys.encode_int(500)), (keys.journal_key(500), b"journaled")])
        located = Position(500, len(fake_log.messages), fake_log.messages[-1][-32:])
        with pytest.raises(SnapshotError, match="was the master running"):
            write_snapshot(master, tmp_path / "bad", "dir", cluster=CLUSTER, source_id="master", master_position=Position(499, 1, b""))
        manifest = write_snapshot(master, tmp_path / "snap", "dir", cluster=CLUSTER, source_id="master", master_position=located)

    assert manifest.source == "master" and (manifest.next_offset, manifest.sequence) == (50, 500)
    pairs = all_pairs(tmp_path / "snap" / "chaindb")
    assert keys.MASTER_SEQUENCE not in pairs and keys.journal_key(500) not in pairs
    assert pairs[keys.CLUSTER] == CLUSTER.encode()
    with LevelDB(tmp_path / "snap" / "chaindb", create=False) as restored:
        assert read_position(restored) == replica_position
    assert manifest.state_sha256 == state_hash(chain_pairs(tmp_path / "replica" / "chaindb"))
