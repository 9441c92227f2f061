"""A stalled broker holds only the calls that wait on it, apart from the request slots: reads keep being answered."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from deploy.localbroker import free_port
from tests.integration.harness import post_json, wait_for
from tests.integration.test_health import own_broker

pytestmark = pytest.mark.broker

BUSY = "server busy (16 calls already waiting on the broker for filters, sent transactions or pending nonces), retry shortly"
UNACKNOWLEDGED = "the broker did not acknowledge the filter's record within 2s; retry shortly"


def test_a_stalled_broker_holds_its_own_calls_and_reads_go_on(tmp_path: Path) -> None:
    with own_broker(tmp_path) as (broker, cluster):
        cluster.start_dev_master(free_port(), block_time=1.0)
        replica = cluster.start_replica("r1", rpc_broker_timeout="2", rpc_max_broker_waiting="16")
        replica.wait_ready()
        assert broker.process is not None

        def call(method: str, *params: Any) -> Any:
            return post_json(replica.url + "/", {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})

        os.kill(broker.process.pid, signal.SIGSTOP)  # the broker takes every record and acknowledges none
        try:
            with ThreadPoolExecutor(max_workers=20) as pool:  # 16 (RPC_MAX_BROKER_WAITING) wait, 4 past the bound
                installs = [pool.submit(call, "eth_newFilter", {}) for _ in range(20)]
                wait_for(lambda: sum(install.done() for install in installs) == 4, 5, "the installs past the bound refused")
                reads = [call("eth_blockNumber") for _ in range(20)]
                still_waiting = sum(not install.done() for install in installs)
                answers = [install.result()["error"]["message"] for install in installs]
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
    assert all("result" in read for read in reads) and still_waiting == 16, (reads, still_waiting)
    assert sorted(answers) == sorted([BUSY] * 4 + [UNACKNOWLEDGED] * 16)
