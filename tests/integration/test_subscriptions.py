"""WebSocket subscriptions on a replica fed over Kafka: a client that stops reading is cut off, the rest carry on."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from typing import Any

import aiohttp
import pytest

from deploy.localbroker import free_port
from tests.contracts import init_code
from tests.integration.harness import Cluster, Replica, metrics, wait_for
from tests.integration.test_filters import deploy, send

pytestmark = pytest.mark.broker

SEND_QUEUE = 8
LOG_BYTES = 100_000
LOG_CALLDATA_RUNTIME = bytes.fromhex("366000600037366000a000")
"""CALLDATACOPY the whole calldata to memory, LOG0 it, STOP: one log as large as the calldata."""


class SilentClient:
    """A WebSocket client on a plain socket with a 4 KB receive buffer that, once subscribed, never reads."""

    def __init__(self, port: int) -> None:
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.socket.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.socket.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.socket.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_text(self, text: str) -> None:
        """One masked text frame (payload under 64 KB)."""
        payload, mask = text.encode(), os.urandom(4)
        length = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
        self.socket.sendall(b"\x81" + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive_text(self) -> str:
        """One unmasked text frame from the server (the subscription's answer)."""
        def exactly(count: int) -> bytes:
            data = b""
            while len(data) < count:
                data += self.socket.recv(count - len(data))
            return data

        length = exactly(2)[1] & 0x7F
        if length == 126:
            length = int.from_bytes(exactly(2), "big")
        elif length == 127:
            length = int.from_bytes(exactly(8), "big")
        return exactly(length).decode()

    def cut_off(self) -> bool:
        """Did the server drop the connection? (Reading now drains the buffers, then meets the reset or EOF.)"""
        self.socket.settimeout(5)
        try:
            while self.socket.recv(65536):
                pass
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return True


def metric(replica: Replica, name: str) -> float:
    return metrics(replica)[name][()]


async def heads_while(replica: Replica, work: Any) -> list[int]:
    """Head numbers an attentive client receives while ``work`` runs in a thread."""
    async with aiohttp.ClientSession() as session, session.ws_connect(replica.url + "/") as ws:
        await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]})
        heads: list[int] = []
        done = asyncio.get_running_loop().run_in_executor(None, work)
        while not done.done() or not heads:
            try:
                message = await ws.receive_json(timeout=0.5)
            except asyncio.TimeoutError:
                continue
            if message.get("method") == "eth_subscription":
                heads.append(int(message["params"]["result"]["number"], 16))
        await done
        return heads


def test_a_websocket_client_that_stops_reading_is_cut_off_and_the_others_keep_every_head(cluster: Cluster) -> None:
    port = free_port()
    cluster.start_dev_master(port, block_time=0.1)
    replica = cluster.start_replica("r1", ws_send_queue=str(SEND_QUEUE))
    replica.wait_ready()
    contract, key = deploy(port, init_code(LOG_CALLDATA_RUNTIME), account=1)
    wait_for(lambda: replica.rpc("eth_getCode", contract, "latest").get("result", "0x") != "0x", 10, "the contract on the replica")

    silent = SilentClient(replica.port)
    silent.send_text(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["logs", {"address": contract}]}))
    answer = json.loads(silent.receive_text())
    assert answer["id"] == 1 and "result" in answer, answer

    def flood() -> None:
        """Logs of 100 KB each, 8 at a time, until the replica drops the silent client (the kernel's send
        buffer alone holds up to 4 MB here: tcp_wmem)."""
        for first in range(1, 100, 8):
            sent = [send(port, key, nonce, contract, os.urandom(LOG_BYTES), gas=5_000_000) for nonce in range(first, first + 8)]
            wait_for(lambda: replica.rpc("eth_getTransactionReceipt", sent[-1]).get("result"), 10, "the logs on the replica")
            if metric(replica, "ethercattle_ws_slow_consumers_dropped_total") >= 1:
                return
        raise AssertionError("the silent client was never dropped")

    started = time.monotonic()
    heads = asyncio.run(heads_while(replica, flood))
    print(f"\nsilent WebSocket client dropped after {time.monotonic() - started:.1f}s; the attentive one got heads "
          f"{heads[0]}..{heads[-1]}")
    assert silent.cut_off()
    assert heads == list(range(heads[0], heads[0] + len(heads)))  # the attentive client: every head, in order
    assert metric(replica, "ethercattle_ws_slow_consumers_dropped_total") == 1
    assert "WebSocket client dropped" in replica.log()
    assert replica.readiness()[0] == 200
