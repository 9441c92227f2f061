"""The same head on every replica: a replica held back answers for a block another replica already serves."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from deploy.localbroker import free_port
from rpc.blockwait import HEAD_HEADER
from tests.integration.harness import Cluster, Replica, metrics

pytestmark = pytest.mark.broker


def head_and_answer(replica: Replica, method: str, *params: Any) -> tuple[int, Any]:
    """The replica's head from the response header, and the call's JSON-RPC result."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(replica.url + "/", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.headers[HEAD_HEADER]), json.loads(response.read())["result"]


def test_a_replica_held_back_waits_for_the_block_another_replica_serves(cluster: Cluster) -> None:
    cluster.start_dev_master(free_port(), block_time=0.3)
    current = cluster.spawn_replica("current")
    # Fetches answered only after 1.5 s: this replica trails the other by several blocks.
    behind = cluster.spawn_replica("behind", fetch_max_wait_ms="1500", rpc_block_wait_blocks="10", rpc_block_wait="4")
    current.wait_ready(60)
    behind.wait_ready(60)

    served = []
    for _ in range(5):
        head, _ = head_and_answer(current, "eth_blockNumber")
        behind_head, block = head_and_answer(behind, "eth_getBlockByNumber", hex(head), False)
        assert block is not None and int(block["number"], 16) == head
        assert behind_head >= head
        served.append(head)

    waits = metrics(behind)["ethercattle_rpc_block_waits_total"][()]
    assert waits >= 1, f"the held-back replica never trailed: heads {served}"
