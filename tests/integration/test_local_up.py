"""The README's first command: ``ethercattle up`` brings up broker, master, replicas, emitter and the
cluster's one URL (HAProxy), and stops them all."""

from __future__ import annotations

import json
import asyncio
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from deploy.localbroker import free_port
from rpc.blockwait import HEAD_HEADER
from tests.integration.harness import post_json, wait_for

pytestmark = pytest.mark.broker


async def chain_id_over_websocket(url: str) -> object:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        return (await ws.receive_json(timeout=10))["result"]


def test_up_prints_where_the_rpc_answers_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    rpc_port, broker_port, master_port, lb_port = free_port(), free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "up", "--datadir", str(tmp_path), "--broker-port", str(broker_port),
         "--rpc-port", str(rpc_port), "--master-port", str(master_port), "--block-time", "0.5",
         "--replicas", "2", "--lb-port", str(lb_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    try:
        wait_for(lambda: lines.append(process.stdout.readline()) or "Ctrl-C" in lines[-1] or process.poll() is not None,
                 120, "ethercattle up to print its endpoints")
        if process.poll() is not None:
            lines.append(process.stdout.read())  # it exited: keep everything it said for the failure message
        printed = "".join(lines)
        url = re.search(r"replica-0\s+RPC (http://\S+)", printed)
        assert url and url.group(1) == f"http://127.0.0.1:{rpc_port}/", printed
        answer = post_json(url.group(1), {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        assert answer == {"jsonrpc": "2.0", "id": 1, "result": "0x539"}

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
    for port in (broker_port, master_port, rpc_port, lb_port):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers after `ethercattle up` stopped"
