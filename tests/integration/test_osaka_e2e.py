"""The Osaka chain end to end: ethercattle import -> Kafka -> a replica serving the Osaka suite.

The master imports the Osaka chain (54 blocks through Osaka, BPO1 and BPO2); a
replica applies it from the log and answers every case of the suite for the
methods it serves (eth_simulateV1 and the tracers included) over HTTP, strictly as
geth does (messages included), and eth_config as the master does.
"""

from __future__ import annotations

import asyncio

import pytest

from deploy.localbroker import free_port
from tests.integration.harness import Cluster, post_json
from tests.rpc.compat import pass_table, replay_suite
from tests.rpc.test_conformance_osaka import SERVED_CASES, OSAKA_SUITE

pytestmark = pytest.mark.broker


def test_a_replica_fed_over_kafka_serves_the_osaka_suite(cluster: Cluster) -> None:
    cluster.import_compat_chain(OSAKA_SUITE)
    master_port = free_port()
    cluster.start_dev_master(master_port, dev=False)
    replica = cluster.start_replica("r1", rpc_call_timeout="60", rpc_request_timeout="60")  # answers are checked, not speed
    replica.wait_ready()

    results = asyncio.run(replay_suite(replica.url + "/", SERVED_CASES))

    print("\n" + pass_table(results))
    failed = [f"{r.case.id}: {r.detail or 'message differs'}" for r in results if not (r.passed and r.strict)]
    assert not failed and len(results) == len(SERVED_CASES) >= 180
    config_request = {"jsonrpc": "2.0", "id": 1, "method": "eth_config", "params": []}
    assert replica.rpc("eth_config") == post_json(f"http://127.0.0.1:{master_port}/", config_request)
