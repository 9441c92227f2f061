"""Snapshots end to end: real broker, real masters, ``faust -A pipeline worker`` replicas, the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import threading
import time
from pathlib import Path

import pytest

from master.node import MasterNode
from cluster.settings import Settings
from snapshot import restore as restore_module
from snapshot.archive import read_manifest
from snapshot.manifest import SnapshotTooOld
from snapshot.remote import HEADER, PATH, sign
from snapshot.restore import restore_snapshot
from tests.integration.harness import SECRET, COMPAT, Cluster, assert_identical, get_json, master_sequence, stop_together, wait_for

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def importable_snapshot_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers run ``faust`` from the venv's bin: make the repository's packages importable there too."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def settings_for(cluster: Cluster, datadir: Path, **extra: object) -> Settings:
    return Settings(broker=cluster.broker_url, cluster=cluster.name, secret=SECRET, datadir=datadir, heartbeat_interval=0.5, **extra)


class PacedMaster(threading.Thread):
    """A master writing single puts at a steady pace (heartbeats included), so replicas apply while we snapshot."""

    def __init__(self, cluster: Cluster, records: int, per_round: int = 40, pause: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.settings = settings_for(cluster, cluster.master_dir)
        self.records, self.per_round, self.pause = records, per_round, pause
        self.written = 0
        self.last: int | None = None
        self.error: BaseException | None = None
        self.stop = threading.Event()  # set: finish the current round, flush, and end early

    def run(self) -> None:
        try:
            asyncio.run(self._write())
        except BaseException as exc:  # surfaced by join_last()
            self.error = exc

    async def _write(self) -> None:
        async with MasterNode(self.settings) as node:
            assert node.db is not None
            while self.written < self.records and not self.stop.is_set():
                for _ in range(self.per_round):
                    node.db[b"paced-%08d" % self.written] = os.urandom(256)
                    self.written += 1
                await asyncio.sleep(self.pause)
            await node.flush()
            self.last = node.db.sequence

    def join_last(self, timeout: float = 120) -> int:
        self.join(timeout)
        assert self.error is None, repr(self.error)
        assert self.last is not None, "the paced master did not finish"
        return self.last


def signed_get(url: str, cluster: Cluster) -> tuple[int, dict]:
    import urllib.request

    request = urllib.request.Request(url + PATH, headers={HEADER: sign(SECRET, cluster.name, "GET", PATH, b"")})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


def test_snapshot_of_a_replica_while_it_applies_restores_to_a_replica_identical_to_the_master(cluster: Cluster, tmp_path: Path) -> None:
    cluster.import_compat_chain()
    imported = master_sequence(cluster.master_dir)
    r1 = cluster.start_replica("r1")
    r1.wait_sequence(imported)
    writer = PacedMaster(cluster, records=100_000)
    writer.start()
    wait_for(lambda: (r1.health() or {}).get("sequence", 0) > imported + 500, 60, "r1 to follow the paced master")

    try:
        made = cluster.ethercattle("snapshot", "create", "--url", r1.url, "--out", str(tmp_path / "live.tar.gz"), datadir=cluster.replica_dir("r1"))
        time.sleep(0.3)
    finally:
        writer.stop.set()  # the master wrote all along the snapshot, and a little after it
    assert made.returncode == 0, made.stdout + made.stderr
    manifest = read_manifest(tmp_path / "live.tar.gz")
    last = writer.join_last()
    assert imported < manifest.sequence < last, "the snapshot was not taken while records were being applied"
    assert manifest.source == "replica" and manifest.source_id == "r1" and manifest.cluster == cluster.name

    restored = cluster.ethercattle("snapshot", "restore", "--from", str(tmp_path / "live.tar.gz"), datadir=cluster.replica_dir("r2"))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"catches up from offset {manifest.next_offset}" in restored.stdout
    r2 = cluster.start_replica("r2")
    body = r2.wait_sequence(last)
    assert body["records_applied"] == last - manifest.sequence and body["duplicates_skipped"] == 0
    r1.wait_sequence(last)
    stop_together([r1.process, r2.process])
    assert_identical(cluster.master_dir, cluster.replica_dir("r2"))
    assert_identical(cluster.master_dir, cluster.replica_dir("r1"))


def flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_cli_refuses_a_corrupted_snapshot_another_clusters_snapshot_and_a_locked_database(imported: Cluster, tmp_path: Path) -> None:
    cluster = imported
    r1 = cluster.start_replica("r1")  # resumes at the log's end: its database stays as the fixture left it
    try:
        r1.wait_sequence(master_sequence(cluster.master_dir))
        locked = cluster.ethercattle("snapshot", "create", "--out", str(tmp_path / "x.tar.gz"), datadir=cluster.replica_dir("r1"))
        assert locked.returncode == 1 and "locked by a running process" in locked.stderr
    finally:
        r1.stop()
    made = cluster.ethercattle("snapshot", "create", "--out", str(tmp_path / "good.tar.gz"), datadir=cluster.replica_dir("r1"))
    assert made.returncode == 0, made.stderr

    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes((tmp_path / "good.tar.gz").read_bytes())
    flip_middle_byte(damaged)
    refused = cluster.ethercattle("snapshot", "restore", "--from", str(damaged), datadir=tmp_path / "new")
    assert refused.returncode == 1 and "damaged" in refused.stderr, refused.stderr
    assert not (tmp_path / "new" / "chaindb").exists()

    foreign = cluster.ethercattle("snapshot", "restore", "--from", str(tmp_path / "good.tar.gz"), datadir=tmp_path / "new", cluster="othercluster")
    assert foreign.returncode == 1
    assert f"belongs to cluster '{cluster.name}', not 'othercluster'" in foreign.stderr
    assert not (tmp_path / "new" / "chaindb").exists()

    accepted = cluster.ethercattle("snapshot", "restore", "--from", str(tmp_path / "good.tar.gz"), datadir=tmp_path / "new")
    assert accepted.returncode == 0, accepted.stderr
    assert_identical(cluster.master_dir, tmp_path / "new")


def test_snapshot_older_than_the_topics_earliest_offset_is_refused_with_its_age(
    imported: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = imported
    made = cluster.ethercattle("snapshot", "create", "--out", str(tmp_path / "s"), "--format", "dir", datadir=cluster.replica_dir("r1"))
    assert made.returncode == 0, made.stderr
    manifest = read_manifest(tmp_path / "s")

    # Tansu never drops records (retention is not applied), so the real probe of the real log is
    # shifted as Apache Kafka's retention would: its earliest offset now lies past the snapshot's.
    real_probe = restore_module.probe_for
    seen = {}

    async def after_retention(settings, position, timeout=15.0):  # noqa: ANN001, ANN202
        probe = await real_probe(settings, position, timeout)
        seen["real"] = probe
        return dataclasses.replace(probe, earliest=manifest.next_offset + 7)

    monkeypatch.setattr(restore_module, "probe_for", after_retention)
    time.sleep(1.1)
    with pytest.raises(SnapshotTooOld) as refused:
        asyncio.run(restore_snapshot(settings_for(cluster, tmp_path / "new"), tmp_path / "s"))
    assert seen["real"].earliest == 0 and seen["real"].previous is not None  # the broker really was asked
    message = str(refused.value)
    assert "is too old: it was taken 1s ago" in message or "is too old: it was taken 2s ago" in message
    assert f"before offset {manifest.next_offset + 7} (7 messages)" in message
    assert not (tmp_path / "new" / "chaindb").exists()

    monkeypatch.setattr(restore_module, "probe_for", real_probe)
    restored = asyncio.run(restore_snapshot(settings_for(cluster, tmp_path / "new"), tmp_path / "s"))
    assert restored.manifest == manifest


def test_scheduled_snapshots_keep_the_newest_and_a_new_replica_starts_from_the_newest(cluster: Cluster, tmp_path: Path) -> None:
    store = tmp_path / "store"
    r1 = cluster.start_replica("r1", snapshot_interval="1", snapshot_dir=str(store), snapshot_keep="2", snapshot_format="dir")
    wait_for(lambda: (r1.health() or {}).get("lag") is not None, 30, "r1 to resume on the (empty) log")
    writer = PacedMaster(cluster, records=1500, per_round=30, pause=0.12)
    writer.start()
    last = writer.join_last()
    r1.wait_sequence(last)

    def newest_holds(sequence: int) -> bool:
        names = sorted(p.name for p in store.iterdir() if ".partial" not in p.name) if store.exists() else []
        return len(names) <= 2 and bool(names) and read_manifest(store / names[-1]).sequence == sequence

    wait_for(lambda: newest_holds(last), 30, "a scheduled snapshot at the last record")
    status, body = signed_get(r1.url, cluster)
    assert status == 200 and body["status"]["snapshots_taken"] >= 3
    assert body["status"]["retention_at_risk"] is False and body["status"]["earliest_offset"] == 0
    assert get_json(r1.url + PATH)[0] == 401  # unsigned: refused

    restored = cluster.ethercattle("snapshot", "restore", "--from", str(store), datadir=cluster.replica_dir("r2"))
    assert restored.returncode == 0, restored.stderr
    r2 = cluster.start_replica("r2")
    body = r2.wait_sequence(last)
    assert body["records_applied"] == 0
    stop_together([r1.process, r2.process])
    assert_identical(cluster.master_dir, cluster.replica_dir("r2"))


def test_cluster_init_imports_snapshots_the_master_and_starts_replicas_past_the_import(cluster: Cluster, tmp_path: Path) -> None:
    done = cluster.ethercattle(
        "cluster", "init", "--genesis", str(COMPAT / "genesis.json"), "--chain", str(COMPAT / "chain.rlp"),
        "--snapshot-dir", str(tmp_path / "store"), "--replica-datadir", str(cluster.replica_dir("r1")),
        "--replica-datadir", str(cluster.replica_dir("r2")),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[5/5] restoring into 2 replica datadir(s)" in done.stdout
    (snapshot,) = list((tmp_path / "store").iterdir())
    manifest = read_manifest(snapshot)
    assert manifest.source == "master" and manifest.sequence == master_sequence(cluster.master_dir) and manifest.next_offset > 0
    assert manifest.head is not None and manifest.head.number == 45

    r1 = cluster.start_replica("r1")
    body = r1.wait_sequence(manifest.sequence)
    wait_for(lambda: (r1.health() or {}).get("lag") == 0, 30, "r1 at the log's end")
    assert body["records_applied"] == 0 and (r1.health() or {})["duplicates_skipped"] == 0
    writer = PacedMaster(cluster, records=600, per_round=40, pause=0.1)
    writer.start()
    waited = cluster.ethercattle("cluster", "wait", "--url", r1.url, "--timeout", "30")  # heartbeats flow: ready
    assert waited.returncode == 0, waited.stderr
    last = writer.join_last()
    assert r1.wait_sequence(last)["records_applied"] == last - manifest.sequence
    r1.stop()
    assert_identical(cluster.master_dir, cluster.replica_dir("r1"))
