"""eth_capabilities: a replica serves every resource from genesis up to its head."""

from __future__ import annotations

from tests.rpc.conftest import Call


async def test_capabilities_name_the_head_and_full_history(compat_call: Call) -> None:
    head = (await compat_call("eth_getBlockByNumber", "latest", False))["result"]
    capabilities = (await compat_call("eth_capabilities"))["result"]
    assert capabilities.pop("head") == {"number": head["number"], "hash": head["hash"]}
    assert set(capabilities) == {"state", "tx", "logs", "receipts", "blocks", "stateproofs"}
    assert all(resource == {"disabled": False, "oldestBlock": "0x0"} for resource in capabilities.values())
