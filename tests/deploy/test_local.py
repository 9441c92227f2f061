"""``ethercattle up``'s plan: one cluster as always, or several side by side, each replica naming the others as status peers."""

from __future__ import annotations

import socket
from pathlib import Path

from cluster.settings import Settings
from deploy.local import plan_clusters, port_problem, status_peers
from deploy.localbroker import free_port

ROOT = Path("/var/local-up")


def test_a_lone_cluster_is_local_in_the_datadir_itself() -> None:
    (only,) = plan_clusters(ROOT, 1, 2, broker_port=9092, rpc_port=8546, master_port=8545)
    assert (only.name, only.datadir, only.broker_port, only.master_port, only.replica_ports) == ("local", ROOT, 9092, 8545, [8546, 8547])
    assert only.label == "" and only.server(1) == "replica-1" and status_peers(only, [only]) == ""


def test_several_clusters_get_their_own_directory_broker_master_and_replica_ports() -> None:
    a, b = plan_clusters(ROOT, 2, 2, broker_port=9092, rpc_port=8546, master_port=8545)
    assert (a.name, a.datadir, a.broker_port, a.master_port, a.replica_ports) == ("local-a", ROOT / "local-a", 9092, 8545, [8546, 8547])
    assert (b.name, b.datadir, b.broker_port, b.master_port, b.replica_ports) == ("local-b", ROOT / "local-b", 9093, 8544, [8548, 8549])
    assert b.server(0) == "local-b-replica-0"


def test_each_clusters_replicas_name_every_replica_of_the_others_as_status_peers() -> None:
    clusters = plan_clusters(ROOT, 3, 1, broker_port=9092, rpc_port=8546, master_port=8545)
    peers = status_peers(clusters[1], clusters)
    assert peers == "local-a=http://127.0.0.1:8546,local-c=http://127.0.0.1:8548"
    settings = Settings(broker="kafka://127.0.0.1:9093", cluster="local-b", datadir=ROOT, secret="a-cluster-secret-0123",
                        status_peers=peers)
    assert settings.status_peer_urls == {"local-a": ["http://127.0.0.1:8546"], "local-c": ["http://127.0.0.1:8548"]}


def test_ports_planned_twice_or_taken_are_named_before_anything_starts(tmp_path: Path) -> None:
    planned = plan_clusters(tmp_path, 2, 1, broker_port=7000, rpc_port=7100, master_port=7101)
    assert port_problem(planned, 7200) == "port 7100 is planned for both the local-a/replica-0 RPC and the local-b/master RPC"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        lone = plan_clusters(tmp_path, 1, 1, broker_port=port, rpc_port=free_port(), master_port=free_port())
        assert port_problem(lone, free_port()) == f"port {port} (the broker) is not free: Address already in use"
