"""What an operator meets at start: where a replica listens, and a broker that is not there (yet)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deploy.localbroker import LocalBroker, free_port
from tests.integration.harness import SECRET, Cluster, listening_addresses, wait_for

pytestmark = pytest.mark.broker


def test_a_replica_given_web_host_127_0_0_1_listens_on_127_0_0_1_only(cluster: Cluster) -> None:
    replica = cluster.start_replica("r1")
    assert listening_addresses(replica.port) == {"127.0.0.1"}


def test_topics_against_an_unreachable_broker_says_what_to_check_in_one_line(tmp_path: Path) -> None:
    broker = f"kafka://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "topics"], capture_output=True, text=True, timeout=60,
        env={"ETHERCATTLE_BROKER": broker, "ETHERCATTLE_CLUSTER": "nobroker", "ETHERCATTLE_SECRET": SECRET,
             "ETHERCATTLE_DATADIR": str(tmp_path), "PATH": ""},
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"ethercattle: cannot reach the Kafka broker at {broker} (KafkaConnectionError): check that it is running "
        f"and reachable from here, and that ETHERCATTLE_BROKER names it"
    ]


def test_a_replica_started_before_its_broker_keeps_retrying_then_starts(tmp_path: Path) -> None:
    port = free_port()
    cluster = Cluster(f"kafka://127.0.0.1:{port}", tmp_path)
    try:
        replica = cluster.spawn_replica("r1")
        wait_for(lambda: replica.log().count("cannot reach the Kafka broker") >= 2 or replica.process.poll() is not None,
                 60, "the replica to retry the broker")
        assert replica.process.poll() is None and "Traceback" not in replica.log()
        assert f"cannot reach the Kafka broker at kafka://127.0.0.1:{port}" in replica.log()
        with LocalBroker(port=port, log_path=tmp_path / "broker.log"):
            wait_for(lambda: "resuming" in replica.log() or replica.process.poll() is not None, 60, "the replica to start")
            assert replica.process.poll() is None and replica.health() is not None
            cluster.stop_all()
    finally:
        cluster.stop_all()
