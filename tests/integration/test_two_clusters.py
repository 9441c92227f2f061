"""Two clusters behind one balancer: a master is a single point of failure only for its own cluster.

Each cluster's replica names the other cluster's replica in STATUS_PEERS, so
either status page shows both clusters, and what became of one after its master
stopped, and after its replica went away.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from deploy.haproxy import HAProxy
from deploy.localbroker import LocalBroker, free_port
from tests.integration.harness import Cluster, Replica, get_json, stop, wait_for
from tests.integration.test_health import chromium
from tests.integration.test_loadbalancer import Load, start_haproxy, start_replica_on

pytestmark = pytest.mark.broker

MAX_HEARTBEAT_AGE = "2.0"
STATUS_INTERVAL = "0.5"


@pytest.fixture
def two_clusters(broker: LocalBroker, tmp_path: Path) -> Iterator[tuple[Cluster, Cluster]]:
    made = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        made.append(Cluster(broker.url, tmp_path / name))
    yield made[0], made[1]
    for cluster in made:
        cluster.stop_all()


def test_stopping_one_clusters_master_leaves_every_request_to_the_other_cluster(two_clusters: tuple[Cluster, Cluster],
                                                                               tmp_path: Path) -> None:
    a, b = two_clusters
    masters = {name: cluster.start_dev_master(free_port(), block_time=0.5) for name, cluster in (("a", a), ("b", b))}
    ports = {"a-r1": free_port(), "b-r1": free_port()}
    peers = {"a-r1": f"{b.name}=http://127.0.0.1:{ports['b-r1']}", "b-r1": f"{a.name}=http://127.0.0.1:{ports['a-r1']}"}
    replicas = {server: start_replica_on(cluster, "r1", ports[server], max_heartbeat_age=MAX_HEARTBEAT_AGE,
                                         status_interval=STATUS_INTERVAL, status_peers=peers[server])
                for server, cluster in (("a-r1", a), ("b-r1", b))}
    for replica in replicas.values():
        replica.wait_ready()
    for server in replicas:
        wait_for(lambda: cluster_states(replicas[server]) == {a.name: "serving", b.name: "serving"}, 10,
                 f"{server}'s status page to show both clusters serving")
    assert [c["cluster"] for c in status_json(replicas["b-r1"])["clusters"]] == [b.name, a.name]  # its own first
    haproxy: HAProxy = start_haproxy(tmp_path, ports)
    try:
        wait_for(lambda: all(row["status"] == "UP" for row in haproxy.stats().values()), 10, "both clusters UP")
        with Load(haproxy.url) as load:
            wait_for(lambda: all(int(row["stot"]) > 0 for row in haproxy.stats().values()), 10, "both clusters serving")
            stop(masters["a"])
            wait_for(lambda: haproxy.stats()["a-r1"]["status"].startswith("DOWN"), 15, "HAProxy to pull cluster a's replica")
            errors_before, ok_before = len(load.errors), load.ok
            sessions_before = {name: int(row["stot"]) for name, row in haproxy.stats().items()}
            time.sleep(2.0)
            errors_after, ok_after = len(load.errors) - errors_before, load.ok - ok_before
        sessions_after = {name: int(row["stot"]) for name, row in haproxy.stats().items()}
        assert errors_after == 0, load.errors[errors_before:][:5]
        assert ok_after > 20
        assert sessions_after["a-r1"] == sessions_before["a-r1"]
        assert sessions_after["b-r1"] > sessions_before["b-r1"]
        assert replicas["a-r1"].readiness()[0] == 503
    finally:
        haproxy.stop()

    wait_for(lambda: cluster_states(replicas["b-r1"]) == {a.name: "not-serving", b.name: "serving"}, 10,
             "b's status page to show cluster a not serving")
    seen_from_b = {c["cluster"]: c for c in status_json(replicas["b-r1"])["clusters"]}[a.name]
    assert seen_from_b["master"]["alive"] is False and "heartbeat" in seen_from_b["replicas"][0]["reason"]
    dom = chromium("--dump-dom", replicas["b-r1"].url + "/status")
    assert f'data-cluster="{a.name}" data-state="not-serving"' in dom.stdout, dom.stderr[-2000:]
    assert f'data-cluster="{b.name}" data-state="serving"' in dom.stdout

    replicas["a-r1"].stop()
    wait_for(lambda: cluster_states(replicas["b-r1"]) == {a.name: "unreachable", b.name: "serving"}, 10,
             "b's status page to show cluster a unreachable")


def status_json(replica: Replica) -> dict[str, Any]:
    code, body = get_json(replica.url + "/status.json", timeout=5)
    assert code == 200, (code, body)
    return body


def cluster_states(replica: Replica) -> dict[str, str]:
    """What ``replica``'s status page says of each cluster: serving (a replica ready), not-serving, unreachable."""
    return {c["cluster"]: "unreachable" if not c["reachable"] else "serving" if c["ready"] else "not-serving"
            for c in status_json(replica)["clusters"]}
