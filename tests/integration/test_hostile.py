"""Hostile JSON-RPC input against the real master and a real replica worker: nothing a stranger sends
takes a node down."""

from __future__ import annotations

import asyncio
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
