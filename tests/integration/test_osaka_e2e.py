"""The Osaka rpc-compat suite's current-spec cases against a replica fed over Kafka.

The master imports the Osaka chain (54 blocks through Osaka, BPO1 and BPO2); a
replica applies it from the log and answers the suite's eth_simulateV1 and
eth_getStorageValues cases over HTTP, strictly as geth does (messages included).
"""

from __future__ import annotations

import asyncio

import pytest

from deploy.localbroker import free_port
from tests.integration.harness import Cluster
from tests.rpc.compat import SUITE, load_suite, pass_table, replay_suite

pytestmark = pytest.mark.broker

OSAKA_SUITE = SUITE.parent / "osaka-2026-07"
CURRENT_SPEC = {"eth_simulateV1", "eth_getStorageValues"}


def test_current_spec_cases_pass_strictly_against_a_replica_fed_over_kafka(cluster: Cluster) -> None:
    done = cluster.ethercattle("import", "--genesis", str(OSAKA_SUITE / "genesis.json"),
                               "--chain", str(OSAKA_SUITE / "chain.rlp"))
    assert done.returncode == 0, done.stdout + done.stderr
    cluster.start_dev_master(free_port(), dev=False)
    replica = cluster.start_replica("r1", rpc_call_timeout="60")  # answers are checked, not speed
    replica.wait_ready()
    cases = [case for case in load_suite(OSAKA_SUITE) if case.method in CURRENT_SPEC]
    results = asyncio.run(replay_suite(replica.url + "/", cases))
    print("\n" + pass_table(results))
    not_strict = [f"{r.case.id}: {r.detail or 'message differs'}" for r in results if not r.strict]
    assert not not_strict and len(results) == 96
