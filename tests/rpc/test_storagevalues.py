"""eth_getStorageValues: many slots of many accounts at one block, geth's limits and errors."""

from __future__ import annotations

from tests.rpc.conftest import Call

SLOT0 = "0x" + "00" * 32
UNKNOWN = "0x" + "c1" * 20


async def test_values_equal_eth_get_storage_at_for_every_slot(compat_call: Call) -> None:
    contract = (await compat_call("eth_getTransactionReceipt",
                                  (await compat_call("eth_getBlockByNumber", "0x1", False))["result"]["transactions"][0]
                                  ))["result"]["contractAddress"]
    slots = [SLOT0, "0x" + "00" * 31 + "01"]
    values = (await compat_call("eth_getStorageValues", {contract: slots, UNKNOWN: [SLOT0]}, "latest"))["result"]
    expected = [(await compat_call("eth_getStorageAt", contract, slot, "latest"))["result"] for slot in slots]
    assert values == {contract: expected, UNKNOWN: [SLOT0]}


async def test_the_block_defaults_to_latest(compat_call: Call) -> None:
    assert (await compat_call("eth_getStorageValues", {UNKNOWN: [SLOT0]}))["result"] == {UNKNOWN: [SLOT0]}


async def test_an_empty_request_is_invalid(compat_call: Call) -> None:
    assert (await compat_call("eth_getStorageValues", {}, "latest"))["error"] == {
        "code": -32602, "message": "empty request"}


async def test_more_than_1024_slots_are_refused(compat_call: Call) -> None:
    slots = ["0x" + index.to_bytes(32, "big").hex() for index in range(1025)]
    response = await compat_call("eth_getStorageValues", {UNKNOWN: slots}, "latest")
    assert response["error"] == {"code": -38026, "message": "too many slots (max 1024)"}
