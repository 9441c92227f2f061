"""The README's first command: ``ethercattle up`` brings up broker, master, replicas, emitter and the
cluster's one URL (HAProxy), watches them, and stops them all; with ``--clusters 2``, two such
clusters behind the one URL, each replica's status page showing both."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from deploy.localbroker import bind_error, free_port
from rpc.blockwait import HEAD_HEADER
from tests.integration.harness import get_json, listening_addresses, post_json, wait_for

pytestmark = pytest.mark.broker


def free_run(length: int) -> list[int]:
    """``length`` consecutive free ports: ``up`` puts a second cluster's ports next to the first's, where
    ports picked one by one may be taken (a second master once failed to bind there)."""
    for _ in range(100):
        start = free_port()
        run = list(range(start, start + length))
        if run[-1] < 65536 and all(bind_error(port) is None for port in run):
            return run
    raise AssertionError(f"no {length} consecutive free ports found")


def start_up(tmp_path: Path, rpc_port: int, broker_port: int, master_port: int, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """``ethercattle up`` running, and what it printed until its endpoints (or its exit)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "up", "--datadir", str(tmp_path), "--broker-port", str(broker_port),
         "--rpc-port", str(rpc_port), "--master-port", str(master_port), "--block-time", "0.5", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = process.stdout
    assert output is not None
    lines: list[str] = []

    def endpoints_printed() -> bool:
        lines.append(output.readline())
        return "Ctrl-C" in lines[-1] or process.poll() is not None

    wait_for(endpoints_printed, 120, "ethercattle up to print its endpoints")
    if process.poll() is not None:
        lines.append(output.read())  # it exited: keep everything it said for the failure message
    return process, "".join(lines)


def assert_all_closed(*ports: int) -> None:
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers after `ethercattle up` stopped"


async def chain_id_over_websocket(url: str) -> object:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        return (await ws.receive_json(timeout=10))["result"]


def test_up_prints_where_the_rpc_answers_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    # local-a's replica, local-b's replica, local-b's master, local-a's master, the brokers, HAProxy
    rpc_port, _, _, master_port, broker_port, _, lb_port = free_run(7)
    process, printed = start_up(tmp_path, rpc_port, broker_port, master_port, "--clusters", "2", "--lb-port", str(lb_port))
    try:
        url = re.search(r"local-a/replica-0\s+RPC (http://\S+)", printed)
        assert url and url.group(1) == f"http://127.0.0.1:{rpc_port}/", printed
        assert re.search(r"local-b/replica-0\s+RPC http://127\.0\.0\.1:" + str(rpc_port + 1), printed), printed
        code, status = get_json(url.group(1) + "status.json", timeout=5)
        assert code == 200 and [(c["cluster"], c["reachable"]) for c in status["clusters"]] == [("local-a", True), ("local-b", True)]
        answer = post_json(url.group(1), {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        assert answer == {"jsonrpc": "2.0", "id": 1, "result": "0x539"}
        assert listening_addresses(rpc_port) == {"127.0.0.1"}

        one_url = re.search(r"cluster RPC\s+(http://\S+)\s+WebSocket (ws://\S+)", printed)
        assert one_url and one_url.group(1) == f"http://127.0.0.1:{lb_port}/", printed
        request = urllib.request.Request(one_url.group(1), b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["result"] == "0x539"
            assert int(response.headers[HEAD_HEADER]) >= 0
        assert asyncio.run(chain_id_over_websocket(one_url.group(2))) == "0x539"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    assert_all_closed(broker_port, broker_port + 1, master_port, master_port - 1, rpc_port, rpc_port + 1, lb_port)


def test_up_reports_a_replica_that_dies_and_stops_everything(tmp_path: Path) -> None:
    master_port, rpc_port, _, broker_port = free_run(4)  # HAProxy after the replica
    process, printed = start_up(tmp_path, rpc_port, broker_port, master_port)
    try:
        assert "Ctrl-C" in printed, printed
        replica = next(pid for pid in children(process.pid) if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes())
        os.kill(replica, signal.SIGKILL)
        assert process.wait(60) == 1
        assert process.stdout is not None
        said = process.stdout.read()
        assert f"ethercattle: replica-0 was killed by SIGKILL; see {tmp_path / 'replica-0.log'}. Stopping everything." in said
        assert not Path(f"/proc/{replica}").exists()  # reaped, not a zombie
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(60)
    assert_all_closed(broker_port, master_port, rpc_port)


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_up_names_a_port_that_is_taken_and_starts_nothing(tmp_path: Path) -> None:
    master_port, rpc_port, _, broker_port = free_run(4)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", master_port))
        taken.listen()
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "up", "--datadir", str(tmp_path), "--broker-port", str(broker_port),
             "--rpc-port", str(rpc_port), "--master-port", str(master_port)],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.strip() == (f"ethercattle up: port {master_port} (the master RPC) is not free: Address already in use; "
                                   "choose other ports with --broker-port, --master-port, --rpc-port or --lb-port")
    assert not (tmp_path / "master").exists()
