"""eth_getHeaderByNumber / eth_getHeaderByHash on the rpc-compat chain."""

from __future__ import annotations

from tests.rpc.conftest import Call

BODY_FIELDS = {"transactions", "uncles", "withdrawals", "size"}


async def test_header_by_number_is_the_block_without_its_bodies(compat_call: Call) -> None:
    block = (await compat_call("eth_getBlockByNumber", "0x2c", False))["result"]
    header = (await compat_call("eth_getHeaderByNumber", "0x2c"))["result"]
    assert header == {key: value for key, value in block.items() if key not in BODY_FIELDS}


async def test_header_by_hash_equals_header_by_number(compat_call: Call) -> None:
    header = (await compat_call("eth_getHeaderByNumber", "latest"))["result"]
    assert (await compat_call("eth_getHeaderByHash", header["hash"]))["result"] == header


async def test_an_unknown_header_is_null(compat_call: Call) -> None:
    assert (await compat_call("eth_getHeaderByNumber", "0xffff"))["result"] is None
    assert (await compat_call("eth_getHeaderByHash", "0x" + "ab" * 32))["result"] is None
