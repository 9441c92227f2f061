"""Rebuilding raw blocks from their JSON-RPC form, checked on the rpc-compat chain (every fork to Prague)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientSession

from chain.errors import InvalidBlock
from chain.rpcblock import raw_block
from tests.rpc.conftest import compat_db, compat_service, compat_url  # noqa: F401  (the served rpc-compat chain)


async def call(session: ClientSession, url: str, method: str, *params: Any) -> Any:
    async with session.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}) as response:
        return (await response.json())["result"]


async def test_every_block_rebuilds_to_the_raw_block_the_node_serves(compat_url: str) -> None:
    async with ClientSession() as session:
        head = int(await call(session, compat_url, "eth_blockNumber"), 16)
        for number in range(head + 1):
            block = await call(session, compat_url, "eth_getBlockByNumber", hex(number), True)
            uncles = [await call(session, compat_url, "eth_getUncleByBlockNumberAndIndex", hex(number), hex(i))
                      for i in range(len(block["uncles"]))]
            expected = await call(session, compat_url, "debug_getRawBlock", hex(number))
            assert "0x" + raw_block(block, uncles).hex() == expected, f"block {number}"


async def test_a_transaction_that_does_not_rebuild_to_its_hash_names_the_block(compat_url: str) -> None:
    async with ClientSession() as session:
        block = await call(session, compat_url, "eth_getBlockByNumber", "0x1", True)
    tampered = {**block, "transactions": [{**block["transactions"][0], "value": "0x1234"}]}
    with pytest.raises(InvalidBlock) as raised:
        raw_block(tampered)
    assert raised.value.number == 1 and "does not rebuild to its hash" in str(raised.value)
