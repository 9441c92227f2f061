"""Hostile JSON-RPC input against the real master and a real replica worker: nothing a stranger sends
takes a node down."""

from __future__ import annotations

import asyncio
import threading
import urllib.request

import aiohttp
import orjson
import pytest

from deploy.localbroker import free_port
from tests.integration.harness import Cluster, post_json

pytestmark = pytest.mark.broker

DEEP_BODY = b"[" * 70_000
"""70 KB that segfaulted the standard library's decoder (py_ecc's recursion limit of 100,000)."""


def post_raw(url: str, body: bytes) -> dict[str, object]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return orjson.loads(response.read())  # type: ignore[no-any-return]


async def ws_exchange(url: str, body: bytes) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket:
        await socket.send_bytes(body)
        return orjson.loads((await socket.receive(timeout=10)).data)  # type: ignore[no-any-return]


def test_a_deeply_nested_body_is_a_parse_error_and_master_and_replica_keep_answering(cluster: Cluster) -> None:
    master_port = free_port()
    master = cluster.start_dev_master(master_port)
    replica = cluster.start_replica("r1")
    replica.wait_ready()
    master_url = f"http://127.0.0.1:{master_port}/"

    for url in (master_url, replica.url + "/"):
        answer = post_raw(url, DEEP_BODY)
        assert answer["error"]["code"] == -32700, answer  # type: ignore[index]
        assert "nested deeper than 1024" in answer["error"]["message"]  # type: ignore[index]
    over_websocket = asyncio.run(ws_exchange(replica.url.replace("http", "ws") + "/", DEEP_BODY))
    assert over_websocket["error"]["code"] == -32700  # type: ignore[index]

    assert master.poll() is None and replica.process.poll() is None
    for url in (master_url, replica.url + "/"):
        assert post_json(url, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})["result"] == "0x539"


LOAD_CLIENTS = 256
LOAD_SECONDS = 12.0
MAX_LAG = 50
"""The default ``MAX_LAG`` readiness bound."""
LOOP_CALL = {"jsonrpc": "2.0", "id": 3, "method": "eth_call", "params": [
    {"to": "0x" + "5c" * 20, "gas": "0x186a0"}, "latest", {"0x" + "5c" * 20: {"code": "0x5b600056"}}]}
"""An eth_call of code (put there by a state override) that loops until its 100k gas run out:
tens of milliseconds of EVM on an execution thread, holding Python's GIL."""
MIXED = [
    {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
    {"jsonrpc": "2.0", "id": 2, "method": "eth_getBalance", "params": ["0x" + "11" * 20, "latest"]},
    LOOP_CALL,
]


async def load(url: str, seconds: float) -> dict[str, int]:
    """``LOAD_CLIENTS`` clients sending mixed reads and eth_call back to back; outcomes counted."""
    outcomes: dict[str, int] = {}
    deadline = asyncio.get_running_loop().time() + seconds
    connector = aiohttp.TCPConnector(limit=LOAD_CLIENTS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def client(index: int) -> None:
            while asyncio.get_running_loop().time() < deadline:
                async with session.post(url, json=MIXED[index % len(MIXED)]) as response:
                    body = await response.json(content_type=None)
                    kind = "ok" if "result" in body else f"{response.status} {body['error']['code']} {body['error']['message'][:40]}"
                    outcomes[kind] = outcomes.get(kind, 0) + 1

        await asyncio.gather(*(client(i) for i in range(LOAD_CLIENTS)))
    return outcomes


def test_under_256_concurrent_clients_the_replica_stays_current_and_ready_shedding_the_excess(cluster: Cluster) -> None:
    cluster.start_master(block_time=0.05)
    replica = cluster.start_replica("r1")
    replica.wait_ready()
    start_sequence = replica.health()["sequence"]  # type: ignore[index]
    samples: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.2):
            status, body = replica.readiness()
            lag = next((c["value"] for c in (body or {}).get("checks", []) if c["name"] == "lag"), None)
            samples.append((status, lag))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        outcomes = asyncio.run(load(replica.url + "/", LOAD_SECONDS))
    finally:
        stop.set()
        watcher.join()
    print(f"\n{LOAD_CLIENTS} clients for {LOAD_SECONDS:.0f}s: {outcomes}; "
          f"lag max {max((lag or 0) for _, lag in samples)} over {len(samples)} samples")
    served = {kind: count for kind, count in outcomes.items() if not kind.startswith("503 -32005 ")}
    assert set(served) <= {"ok", "200 -32000 out of gas"}, outcomes  # never "not ready", never a crash
    assert sum(served.values()) > 100
    assert samples and all(status == 200 and lag is not None and lag <= MAX_LAG for status, lag in samples), samples
    assert replica.health()["sequence"] > start_sequence + 100  # type: ignore[index]  # the master's writes kept arriving
