"""eth_simulateV1 on the rpc-compat (Prague) chain: blocks, chaining, modes, transfers, geth's errors."""

from __future__ import annotations

from typing import Any

import pytest
from eth.db.atomic import AtomicDB

from rpc.limits import RpcLimits
from rpc.service import RpcService
from tests.rpc.conftest import Call, caller

SENDER, RECIPIENT, THIRD = "0x" + "c0" + "00" * 19, "0x" + "c1" + "00" * 19, "0x" + "c2" + "00" * 19
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
EMPTY_BLOOM = "0x" + "00" * 256
LOOP_RUNTIME = "0x5b600056"
"""JUMPDEST PUSH1 0 JUMP: runs until gas or time runs out."""
BLOCKHASH_OF_PARENT = "0x6001430340" + "60005260206000f3"
"""Returns BLOCKHASH(NUMBER - 1)."""


def funded(balance: int = 10**18) -> dict[str, Any]:
    return {SENDER: {"balance": hex(balance)}}


def transfer(value: int = 1000, **fields: Any) -> dict[str, Any]:
    return {"from": SENDER, "to": RECIPIENT, "value": hex(value), **fields}


async def simulate(call: Call, blocks: list[dict[str, Any]], block: str = "latest", **options: Any) -> Any:
    return await call("eth_simulateV1", {"blockStateCalls": blocks, **options}, block)


async def test_a_transfer_is_a_block_on_top_of_the_head_with_geths_hashes(compat_call: Call) -> None:
    head = (await compat_call("eth_getBlockByNumber", "latest", False))["result"]
    response = await simulate(compat_call, [{"stateOverrides": funded(), "calls": [transfer()]}])
    block = response["result"][0]
    assert (block["number"], block["parentHash"]) == (hex(int(head["number"], 16) + 1), head["hash"])
    assert block["timestamp"] == hex(int(head["timestamp"], 16) + 12)
    # The unsigned transaction and its receipt as geth builds them (the same call in the Osaka suite).
    assert block["transactions"] == ["0xf1c5abb08809ef760f87aeabe7a87284c60797192dab6d2f0d26c27c9c038e9d"]
    assert block["calls"] == [{"returnData": "0x", "logs": [], "gasUsed": "0x5208", "maxUsedGas": "0x5208",
                               "status": "0x1"}]
    assert (block["gasUsed"], block["baseFeePerGas"]) == ("0x5208", "0x0")


async def test_replaying_a_real_block_reproduces_its_state_and_receipts(compat_call: Call) -> None:
    """Block 44 (Cancun: legacy and blob transactions) as calls on block 43 with its header's values: same roots."""
    block = (await compat_call("eth_getBlockByNumber", "0x2c", True))["result"]
    calls = [{key: tx[key] for key in ("from", "to", "gas", "value", "input", "nonce", "maxFeePerGas",
                                       "maxPriorityFeePerGas", "accessList", "authorizationList",
                                       "maxFeePerBlobGas", "blobVersionedHashes") if key in tx}
             | ({"gasPrice": tx["gasPrice"]} if tx["type"] == "0x0" else {})
             for tx in block["transactions"]]
    assert {tx["type"] for tx in block["transactions"]} == {"0x0", "0x3"}
    overrides = {"number": block["number"], "time": block["timestamp"], "feeRecipient": block["miner"],
                 "prevRandao": block["mixHash"], "gasLimit": block["gasLimit"],
                 "baseFeePerGas": block["baseFeePerGas"], "beaconRoot": block["parentBeaconBlockRoot"],
                 "withdrawals": block["withdrawals"]}
    response = await simulate(compat_call, [{"blockOverrides": overrides, "calls": calls}], "0x2b", validation=True)
    simulated = response["result"][0]
    for field in ("stateRoot", "receiptsRoot", "logsBloom", "gasUsed", "withdrawalsRoot", "blobGasUsed"):
        assert simulated[field] == block[field], field


async def test_blocks_chain_and_a_gap_in_numbers_is_filled_with_empty_blocks(compat_call: Call) -> None:
    head = int((await compat_call("eth_blockNumber"))["result"], 16)
    response = await simulate(compat_call, [{}, {"blockOverrides": {"number": hex(head + 4)}}])
    blocks = response["result"]
    assert [int(b["number"], 16) for b in blocks] == [head + 1, head + 2, head + 3, head + 4]
    assert all(child["parentHash"] == parent["hash"] for parent, child in zip(blocks, blocks[1:]))
    times = [int(b["timestamp"], 16) for b in blocks]
    assert [later - earlier for earlier, later in zip(times, times[1:])] == [12, 12, 12]


async def test_state_changes_carry_into_the_next_block(compat_call: Call) -> None:
    balance_of_third = {"from": SENDER, "to": THIRD, "value": "0x1"}
    response = await simulate(compat_call, [
        {"stateOverrides": funded(), "calls": [transfer(5000)]},
        {"calls": [{"from": RECIPIENT, "to": THIRD, "value": hex(5000 - 1)}, balance_of_third]},
    ])
    assert [call["status"] for block in response["result"] for call in block["calls"]] == ["0x1"] * 3


async def test_blockhash_sees_the_simulated_parent(compat_call: Call) -> None:
    code = {THIRD: {"code": BLOCKHASH_OF_PARENT}}
    response = await simulate(compat_call, [{}, {"stateOverrides": code, "calls": [{"to": THIRD}]}])
    first, second = response["result"]
    assert second["calls"][0]["returnData"] == first["hash"]


async def test_trace_transfers_adds_erc7528_logs_that_stay_out_of_the_receipts(compat_call: Call) -> None:
    response = await simulate(compat_call, [{"stateOverrides": funded(), "calls": [transfer(0x3e8)]}],
                              traceTransfers=True)
    block = response["result"][0]
    (log,) = block["calls"][0]["logs"]
    assert log["address"] == "0x" + "ee" * 20
    assert log["topics"] == [TRANSFER_TOPIC, "0x" + SENDER[2:].rjust(64, "0"), "0x" + RECIPIENT[2:].rjust(64, "0")]
    assert log["data"] == "0x" + "3e8".rjust(64, "0")
    assert (log["blockHash"], log["logIndex"]) == (block["hash"], "0x0")
    assert block["logsBloom"] == EMPTY_BLOOM


async def test_without_trace_transfers_a_transfer_logs_nothing(compat_call: Call) -> None:
    response = await simulate(compat_call, [{"stateOverrides": funded(), "calls": [transfer()]}])
    assert response["result"][0]["calls"][0]["logs"] == []


async def test_full_transactions_carry_the_callers_address(compat_call: Call) -> None:
    response = await simulate(compat_call, [{"stateOverrides": funded(), "calls": [transfer()]}],
                              returnFullTransactions=True)
    block = response["result"][0]
    (tx,) = block["transactions"]
    assert (tx["from"], tx["to"], tx["blockHash"], tx["blockTimestamp"]) == (
        SENDER, RECIPIENT, block["hash"], block["timestamp"])
    assert (tx["v"], tx["r"], tx["s"]) == ("0x0", "0x0", "0x0")


async def test_a_reverting_call_reports_code_3_in_its_result(compat_call: Call) -> None:
    revert = {THIRD: {"code": "0x60006000fd"}}
    response = await simulate(compat_call, [{"stateOverrides": revert, "calls": [{"to": THIRD}]}])
    assert response["result"][0]["calls"][0]["error"] == {"message": "execution reverted", "code": 3, "data": "0x"}


async def test_a_call_out_of_gas_reports_geths_vm_error_code(compat_call: Call) -> None:
    loop = {THIRD: {"code": LOOP_RUNTIME}}
    response = await simulate(compat_call, [{"stateOverrides": loop, "calls": [{"to": THIRD, "gas": "0x10000"}]}])
    (result,) = response["result"][0]["calls"]
    assert (result["status"], result["error"]) == ("0x0", {"message": "out of gas", "code": -32015})


async def test_moved_ecrecover_answers_at_its_new_address(compat_call: Call) -> None:
    ecrecover, moved = "0x" + "00" * 19 + "01", "0x" + "00" * 17 + "123456"
    overrides = {ecrecover: {"movePrecompileToAddress": moved}}
    # A recoverable (hash, v, r, s) from geth's own ecrecover tests.
    signature = ("0x18c547e4f7b0f325ad1e56f57e26c745b09a3e503d86e00e5255ff7f715d3d1c"
                 "000000000000000000000000000000000000000000000000000000000000001c"
                 "73b1693892219d736caba55bdb67216e485557ea6b6af75f37096c9aa6a5a75f"
                 "eeb940b1d03b21e36b0e47e79769f095fe2ab855bd91e3a38756b7d75a9c4549")
    response = await simulate(compat_call, [{"stateOverrides": overrides, "calls": [{"to": moved, "input": signature}]}])
    assert response["result"][0]["calls"][0]["returnData"] == "0x" + "a94f5374fce5edbc8e2a8697c15331677e6ebf0b".rjust(64, "0")


@pytest.mark.parametrize("blocks, code, message", [
    ([{"blockOverrides": {"number": "0x1"}}], -38020, "block numbers must be in order"),
    ([{"blockOverrides": {"time": "0x1"}}], -38021, "block timestamps must be in order"),
    ([{"blockOverrides": {"number": "0xffff"}}], -38026, "too many blocks"),
    ([{}] * 257, -38026, "too many blocks"),
    ([], -32602, "empty input"),
])
async def test_a_chain_geth_refuses_is_answered_with_its_code(compat_call: Call, blocks: list[Any], code: int,
                                                              message: str) -> None:
    response = await simulate(compat_call, blocks)
    assert response["error"]["code"] == code
    assert response["error"]["message"].startswith(message)


@pytest.mark.parametrize("call, validation, code, message", [
    (transfer(), False, -38014, "err: insufficient funds for gas * price + value"),
    (transfer(0, gas="0x0"), False, -38013, "err: intrinsic gas too low: have 0, want 21000 (supplied gas 0)"),
    (transfer(0), True, -38012, "err: max fee per gas less than block base fee"),
    (transfer(0, nonce="0x5", maxFeePerGas="0xffffffffff"), True, -38011, "err: nonce too high"),
])
async def test_a_call_geth_refuses_ends_the_request_with_its_code(compat_call: Call, call: dict[str, Any],
                                                                  validation: bool, code: int, message: str) -> None:
    overrides = {} if call.get("value") else funded()
    response = await simulate(compat_call, [{"stateOverrides": overrides, "calls": [call]}], validation=validation)
    assert response["error"]["code"] == code
    assert response["error"]["message"].startswith(message)


async def test_with_validation_the_base_fee_follows_the_parent(compat_call: Call) -> None:
    next_base_fee = (await compat_call("eth_baseFee"))["result"]
    response = await simulate(compat_call, [{}], validation=True)
    assert response["result"][0]["baseFeePerGas"] == next_base_fee != "0x0"


async def test_a_call_past_its_blocks_gas_limit_is_refused(compat_call: Call) -> None:
    response = await simulate(compat_call, [{"blockOverrides": {"gasLimit": "0x5208"},
                                             "calls": [transfer(0, gas="0x5209")]}])
    assert response["error"]["code"] == -38015


async def test_a_simulation_past_the_time_limit_is_aborted(compat_db: AtomicDB) -> None:
    service = RpcService(compat_db, limits=RpcLimits(call_timeout_seconds=0.2))
    loop = {THIRD: {"code": LOOP_RUNTIME}}
    response = await caller(service)("eth_simulateV1", {"blockStateCalls": [{"stateOverrides": loop,
                                                                             "calls": [{"to": THIRD}]}]})
    assert response["error"] == {"code": -32603, "message": "execution aborted (timeout = 200ms)"}


async def test_calls_past_the_requests_gas_cap_are_refused(compat_db: AtomicDB) -> None:
    """One gas pool (the call gas cap) covers every call of the request, as geth's."""
    service = RpcService(compat_db, limits=RpcLimits(call_gas_cap=30_000))
    blocks = [{"stateOverrides": funded(), "calls": [transfer(1)]}, {"calls": [transfer(1)]}]
    response = await caller(service)("eth_simulateV1", {"blockStateCalls": blocks})
    assert response["error"] == {"code": -38013, "message": "err: intrinsic gas too low: have 9000, want 21000 "
                                                             "(supplied gas 9000)"}
