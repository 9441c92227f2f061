"""The replication spine end to end: master capture -> real broker -> replica LevelDB."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from master.node import MasterNode
from cluster.record import Authenticator, Record, encode_record, encode_records
from cluster.settings import Settings
from cluster.topics import TopicNames
from deploy.localbroker import free_port
from tests.integration.harness import COMPAT, SECRET, Cluster, assert_identical, master_sequence, metrics, stop, wait_for

pytestmark = pytest.mark.broker


def settings_for(cluster: Cluster, datadir: Path, **extra: object) -> Settings:
    return Settings(broker=cluster.broker_url, cluster=cluster.name, secret=SECRET, datadir=datadir, **extra)


def write_backlog(cluster: Cluster, records: int, value_size: int = 512, **extra: object) -> int:
    """Commit ``records`` single puts through the real capture and publisher; return the last sequence."""

    async def write() -> int:
        async with MasterNode(settings_for(cluster, cluster.master_dir, **extra)) as node:
            assert node.db is not None
            for i in range(records):
                node.db[b"backlog-%08d" % i] = os.urandom(value_size)
            await node.flush()
            return node.db.sequence

    return asyncio.run(write())


async def produce_raw(cluster: Cluster, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cluster.broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        await producer.send_and_wait(TopicNames(cluster.name).cdc, value, partition=0)
    finally:
        await producer.stop()


def test_replica_started_after_an_import_holds_exactly_the_masters_pairs(imported: Cluster) -> None:
    assert assert_identical(imported.master_dir, imported.replica_dir("r1")) > 1000


def test_replica_killed_mid_catch_up_resumes_without_applying_a_record_twice(cluster: Cluster) -> None:
    last = write_backlog(cluster, 20_000, max_message_bytes=16_384)
    replica = cluster.start_replica("r1", apply_batch_messages=1)
    wait_for(lambda: 0 < (replica.health() or {}).get("sequence", 0) < last, 30, "catch-up under way", interval=0.01)
    replica.stop(signal.SIGKILL)

    resumed = cluster.start_replica("r1")
    body = resumed.wait_sequence(last)
    resumed_at = int(re.findall(r"resuming \S+ at offset \d+ \(record (\d+)\)", resumed.log())[-1])  # the log holds both runs
    assert 0 < resumed_at < last
    assert body["records_applied"] == last - resumed_at
    assert body["duplicates_skipped"] == 0
    resumed.stop()
    assert_identical(cluster.master_dir, cluster.replica_dir("r1"))


def test_master_killed_before_the_broker_acknowledged_resends_on_restart(cluster: Cluster) -> None:
    # A broker nobody listens on: the import commits (and journals) every block, then waits for acks.
    unreachable = Cluster(f"kafka://127.0.0.1:{free_port()}", cluster.root, name=cluster.name)
    import_process = unreachable.spawn(
        [sys.executable, "-m", "pipeline", "import", "--genesis", str(COMPAT / "genesis.json"), "--chain", str(COMPAT / "chain.rlp")],
        unreachable.env(cluster.master_dir), "import-unacked",
    )
    wait_for(lambda: "waiting for the broker" in cluster.log("import-unacked"), 60, "the import to commit every block")
    stop(import_process, signal.SIGKILL)

    cluster.import_compat_chain()  # the restarted master finds its journal and sends it
    replica = cluster.start_replica("r1")
    replica.wait_sequence(master_sequence(cluster.master_dir))
    replica.stop()
    assert_identical(cluster.master_dir, cluster.replica_dir("r1"))


def test_replica_halts_loudly_on_a_gap_in_the_authenticated_sequence(cluster: Cluster) -> None:
    cluster.import_compat_chain()
    replica = cluster.start_replica("r1")
    last = master_sequence(cluster.master_dir)
    replica.wait_sequence(last)
    asyncio.run(produce_raw(cluster, encode_records(Authenticator.for_cluster(SECRET, cluster.name), "m", [encode_record(Record(10**6, ((b"x", b"y"),)))])))

    wait_for(lambda: (replica.health() or {}).get("halted"), 30, "the replica to halt")
    status, body = replica.readiness()
    assert status == 503 and body is not None and body["sequence"] == last
    assert any(c["name"] == "not_halted" and not c["ok"] and c["value"] == "gap" for c in body["checks"])
    assert body["reason"].startswith("not_halted=gap") and "offset" in body["reason"]  # says why, in one line
    line = next(line for line in replica.log().splitlines() if "HALTED" in line)
    assert "HALTED: gap record at offset" in line and TopicNames(cluster.name).cdc in line
    assert "What to do: " in line and "ethercattle snapshot restore" in line
    replica.stop()


def test_stray_messages_are_skipped_and_the_master_writes_after_them_apply(cluster: Cluster, tmp_path: Path) -> None:
    cluster.import_compat_chain()
    forged = encode_records(Authenticator.for_cluster("someone-elses-secret-00", cluster.name), "m", [encode_record(Record(10**6, ((b"x", b"y"),)))])
    foreign = encode_records(Authenticator.for_cluster(SECRET, "another"), "m", [encode_record(Record(10**6, ((b"x", b"y"),)))])
    for stray in (os.urandom(200), forged, foreign):
        asyncio.run(produce_raw(cluster, stray))
    last = write_backlog(cluster, 20)

    replica = cluster.start_replica("r1")  # a new replica: before, it halted at the first stray, as every replica did
    health = replica.wait_sequence(last)
    assert health["halted"] is None and health["strays_skipped"] == 3
    skipped = metrics(replica)["ethercattle_stray_messages_total"]
    assert skipped == {(("reason", "not-an-envelope"),): 1, (("reason", "forged"),): 1, (("reason", "foreign-cluster"),): 1}
    assert re.search(r"skipped the message at offset \d+: not-an-envelope", replica.log())
    replica.stop()
    assert_identical(cluster.master_dir, cluster.replica_dir("r1"))
    snapshot = cluster.ethercattle("snapshot", "create", "--out", str(tmp_path / "master.tar.gz"))
    assert snapshot.returncode == 0, snapshot.stderr  # the master's position is located across them


def test_replica_refuses_to_start_on_a_log_that_no_longer_holds_its_offset(imported: Cluster, cluster: Cluster) -> None:
    # The same database, pointed at a cluster whose log is empty: as after a broker reset.
    shutil.copytree(imported.replica_dir("r1"), cluster.replica_dir("r1"))
    refused = cluster.start_replica("r1")
    assert wait_for(lambda: refused.process.poll() is not None, 60, "the replica to refuse") is not None
    assert refused.process.returncode != 0
    assert "refusing to start" in refused.log() and "beyond the log's end" in refused.log()
