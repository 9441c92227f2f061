"""Two clusters behind one balancer: a master is a single point of failure only for its own cluster."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest

from deploy.haproxy import HAProxy
from deploy.localbroker import LocalBroker, free_port
from tests.integration.harness import Cluster, stop, wait_for
from tests.integration.test_loadbalancer import Load, start_haproxy, start_replica_on

pytestmark = pytest.mark.broker

MAX_HEARTBEAT_AGE = "2.0"


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
    replicas = {server: start_replica_on(cluster, "r1", ports[server], max_heartbeat_age=MAX_HEARTBEAT_AGE)
                for server, cluster in (("a-r1", a), ("b-r1", b))}
    for replica in replicas.values():
        replica.wait_ready()
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
