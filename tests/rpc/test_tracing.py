"""geth's tracing API on the rpc-compat (Prague) chain: stored transactions and traced calls."""

from __future__ import annotations

from typing import Any

import pytest
from eth._utils.address import generate_contract_address
from eth.vm.forks.prague.constants import (
    CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
)
from eth_typing import Address

from rpc.errors import ServerError
from rpc.limits import RpcLimits
from rpc.service import RpcService
from rpc.tracing.api import go_duration_seconds
from tests.rpc.conftest import Call, caller
from tests.rpc.test_execution import LOOP_RUNTIME, REASON, REVERT_DATA

CREATE_TX = "0xc1d605c6612a5fe84dc95810030bfe5b1d327652b381bc695e28f50d13b2b09e"
"""Block 1: deploys a contract."""
EMIT_TX = "0x323fe75033ae712f34e82c5007ba4f536198955ca3f18ea38063e6c2b1672308"
"""Block 25: calls the emitter contract (stores a word, logs it) with 2 wei."""
TRANSFER_TX = "0xb32dabe3a993102215f19a21e638ef708123137c5c8fc59017765b292c05e4f3"
"""Block 25: sends 1 wei to an account without code."""

CALLER = "0x" + "aa" * 20
CALLEE = "0x" + "bb" * 20
CALLEE_RUNTIME = "602a600052" "601160206000a1" "60206000f3"
"""MSTORE 42 at 0, LOG1 (topic 0x11) of that word, RETURN it."""


def calling(then: str, target: str = CALLEE) -> str:
    """CALL ``target`` (no value, 32 bytes out), POP the success flag, then ``then``."""
    return "6020600060006000600073" + target[2:] + "5af150" + then


REVERT_AFTER_CALL = ("6308c379a060e01b600052" "6020600452" "6004602452" "636e6f706560e01b604452" "60646000fd")
"""Writes the Error("nope") payload into memory and REVERTs with it."""


def overrides(caller_code: str) -> dict[str, Any]:
    return {CALLER: {"code": "0x" + caller_code}, CALLEE: {"code": "0x" + CALLEE_RUNTIME}}


async def trace_call(call: Call, caller_code: str, config: dict[str, Any]) -> Any:
    response = await call("debug_traceCall", {"to": CALLER, "gas": "0x100000"}, "latest",
                          {**config, "stateOverrides": overrides(caller_code)})
    assert "result" in response, response
    return response["result"]


async def result(call: Call, method: str, *params: Any) -> Any:
    response = await call(method, *params)
    assert "result" in response, response
    return response["result"]


# --- stored transactions --------------------------------------------------------------------


async def test_struct_logger_traces_a_transfer_to_an_account_without_code_as_no_steps(compat_call: Call) -> None:
    trace = await result(compat_call, "debug_traceTransaction", TRANSFER_TX)
    assert trace == {"gas": 21000, "failed": False, "returnValue": "0x", "structLogs": []}


async def test_struct_logger_reports_the_receipts_gas_and_the_emitters_storage_write(compat_call: Call) -> None:
    trace = await result(compat_call, "debug_traceTransaction", EMIT_TX)
    receipt = await result(compat_call, "eth_getTransactionReceipt", EMIT_TX)
    assert trace["gas"] == int(receipt["gasUsed"], 16)
    stores = [step for step in trace["structLogs"] if step["op"] == "SSTORE"]
    assert stores and all("storage" in step for step in stores)


async def test_struct_logger_limit_caps_the_steps_recorded(compat_call: Call) -> None:
    trace = await result(compat_call, "debug_traceTransaction", EMIT_TX, {"limit": 5})
    assert len(trace["structLogs"]) == 5


async def test_struct_logger_options_drop_the_stack_and_add_memory(compat_call: Call) -> None:
    trace = await result(compat_call, "debug_traceTransaction", EMIT_TX, {"disableStack": True, "enableMemory": True})
    steps = trace["structLogs"]
    assert not any("stack" in step for step in steps)
    assert any(all(len(chunk) == 66 for chunk in step["memory"]) for step in steps if "memory" in step)


async def test_call_tracer_reports_a_creation_with_the_new_address_and_its_code(compat_call: Call) -> None:
    frame = await result(compat_call, "debug_traceTransaction", CREATE_TX, {"tracer": "callTracer"})
    receipt = await result(compat_call, "eth_getTransactionReceipt", CREATE_TX)
    code = await result(compat_call, "eth_getCode", receipt["contractAddress"], "0x1")
    transaction = await result(compat_call, "eth_getTransactionByHash", CREATE_TX)
    assert (frame["type"], frame["to"], frame["input"], frame["output"]) == \
           ("CREATE", receipt["contractAddress"], transaction["input"], code)
    assert frame["gasUsed"] == receipt["gasUsed"]


async def test_call_tracer_with_log_reports_the_receipts_logs(compat_call: Call) -> None:
    frame = await result(compat_call, "debug_traceTransaction", EMIT_TX,
                         {"tracer": "callTracer", "tracerConfig": {"withLog": True}})
    receipt = await result(compat_call, "eth_getTransactionReceipt", EMIT_TX)
    assert [(log["address"], log["topics"], log["data"]) for log in frame["logs"]] == \
           [(log["address"], log["topics"], log["data"]) for log in receipt["logs"]]
    assert frame["value"] == "0x2"


async def test_4byte_tracer_counts_the_selector_with_its_argument_size(compat_call: Call) -> None:
    counts = await result(compat_call, "debug_traceTransaction", EMIT_TX, {"tracer": "4byteTracer"})
    assert counts == {"0xef7656f1-8": 1}


async def test_prestate_diff_mode_shows_the_value_moved_by_a_transfer(compat_call: Call) -> None:
    diff = await result(compat_call, "debug_traceTransaction", TRANSFER_TX,
                        {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}})
    recipient = "0x5f552da00dfb4d3749d9e62dcee3c918855a86a0"
    moved = int(diff["post"][recipient]["balance"], 16) - int(diff["pre"][recipient]["balance"], 16)
    assert moved == 1
    sender = "0x7435ed30a8b4aeb0877cef0c6e8cffe834eb865f"
    assert diff["post"][sender]["nonce"] == diff["pre"][sender]["nonce"] + 1


async def test_prestate_tracer_shows_the_storage_a_call_read_before_it_wrote(compat_call: Call) -> None:
    before = await result(compat_call, "debug_traceTransaction", EMIT_TX, {"tracer": "prestateTracer"})
    emitter = before["0x7dcd17433742f4c0ca53122ab541d0ba67fc27df"]
    slot0 = await result(compat_call, "eth_getStorageAt", "0x7dcd17433742f4c0ca53122ab541d0ba67fc27df", "0x0", "0x18")
    assert emitter["storage"]["0x" + "00" * 32] == slot0


async def test_noop_tracer_answers_an_empty_object(compat_call: Call) -> None:
    assert await result(compat_call, "debug_traceTransaction", EMIT_TX, {"tracer": "noopTracer"}) == {}


async def test_block_trace_lists_every_transaction_in_order(compat_call: Call) -> None:
    traces = await result(compat_call, "debug_traceBlockByNumber", "0x19", {"tracer": "callTracer"})
    block = await result(compat_call, "eth_getBlockByNumber", "0x19", False)
    assert [trace["txHash"] for trace in traces] == block["transactions"]
    by_hash = await result(compat_call, "debug_traceBlockByHash", block["hash"], {"tracer": "callTracer"})
    assert by_hash == traces


# --- traced calls ---------------------------------------------------------------------------------


async def test_call_tracer_nests_the_callee_and_decodes_the_callers_revert(compat_call: Call) -> None:
    frame = await trace_call(compat_call, calling(REVERT_AFTER_CALL), {"tracer": "callTracer"})
    assert (frame["error"], frame["revertReason"], frame["output"]) == ("execution reverted", REASON, "0x" + REVERT_DATA)
    [callee] = frame["calls"]
    assert (callee["type"], callee["to"], callee["output"]) == ("CALL", CALLEE, "0x" + (42).to_bytes(32, "big").hex())


async def test_call_tracer_drops_the_logs_of_frames_whose_caller_reverted(compat_call: Call) -> None:
    frame = await trace_call(compat_call, calling(REVERT_AFTER_CALL),
                             {"tracer": "callTracer", "tracerConfig": {"withLog": True}})
    assert "logs" not in frame["calls"][0]


async def test_call_tracer_keeps_the_logs_of_frames_that_succeeded(compat_call: Call) -> None:
    frame = await trace_call(compat_call, calling("00"), {"tracer": "callTracer", "tracerConfig": {"withLog": True}})
    [log] = frame["calls"][0]["logs"]
    assert (log["address"], log["topics"], log["position"]) == (CALLEE, ["0x" + "11".rjust(64, "0")], "0x0")


async def test_call_tracer_only_top_call_leaves_out_the_callee(compat_call: Call) -> None:
    frame = await trace_call(compat_call, calling("00"), {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}})
    assert "calls" not in frame


async def test_flat_call_tracer_lists_frames_with_their_trace_addresses(compat_call: Call) -> None:
    frames = await trace_call(compat_call, calling("00"), {"tracer": "flatCallTracer"})
    assert [(f["traceAddress"], f["subtraces"], f["action"]["to"]) for f in frames] == [([], 1, CALLER), ([0], 0, CALLEE)]


async def test_flat_call_tracer_leaves_out_precompile_calls_unless_asked(compat_call: Call) -> None:
    identity = "0x" + "00" * 19 + "04"
    tree = await trace_call(compat_call, calling("00", identity), {"tracer": "callTracer"})
    assert [call["to"] for call in tree["calls"]] == [identity]
    flat = await trace_call(compat_call, calling("00", identity), {"tracer": "flatCallTracer"})
    assert len(flat) == 1
    included = await trace_call(compat_call, calling("00", identity),
                                {"tracer": "flatCallTracer", "tracerConfig": {"includePrecompiles": True}})
    assert [frame["action"]["to"] for frame in included] == [CALLER, identity]


async def test_flat_call_tracer_reports_a_creation_as_parity_does(compat_call: Call) -> None:
    [frame] = await result(compat_call, "debug_traceTransaction", CREATE_TX, {"tracer": "flatCallTracer"})
    receipt = await result(compat_call, "eth_getTransactionReceipt", CREATE_TX)
    transaction = await result(compat_call, "eth_getTransactionByHash", CREATE_TX)
    assert (frame["type"], frame["result"]["address"], frame["action"]["init"]) == \
           ("create", receipt["contractAddress"], transaction["input"])
    assert (frame["blockNumber"], frame["transactionHash"], frame["transactionPosition"]) == (1, CREATE_TX, 0)


async def test_struct_logger_charges_a_call_its_cost_plus_the_gas_it_hands_over(compat_call: Call) -> None:
    trace = await trace_call(compat_call, calling("00"), {})
    steps = trace["structLogs"]
    position = next(i for i, step in enumerate(steps) if step["op"] == "CALL")
    cold_account, first_memory_word = 2600, 3
    assert steps[position]["gasCost"] - steps[position + 1]["gas"] == cold_account + first_memory_word
    assert steps[position + 1]["depth"] == 2


async def test_trace_call_past_its_timeout_is_aborted(compat_call: Call) -> None:
    response = await compat_call("debug_traceCall", {"to": CALLER, "gas": "0x10000000"}, "latest",
                                 {"timeout": "50ms", "stateOverrides": {CALLER: {"code": "0x" + LOOP_RUNTIME}}})
    assert response["error"]["message"] == "execution timeout"


async def test_a_trace_never_outlives_the_call_time_limit(compat_db: Any) -> None:
    call = caller(RpcService(compat_db, limits=RpcLimits(call_timeout_seconds=0.05)))
    response = await call("debug_traceCall", {"to": CALLER, "gas": "0x10000000"}, "latest",
                          {"timeout": "1h", "stateOverrides": {CALLER: {"code": "0x" + LOOP_RUNTIME}}})
    assert response["error"]["message"] == "execution timeout"


async def test_an_unknown_tracer_is_refused(compat_call: Call) -> None:
    response = await compat_call("debug_traceTransaction", EMIT_TX, {"tracer": "prestateTracerX"})
    assert response["error"]["code"] == -32000


@pytest.mark.parametrize("text, seconds", [("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5h", 5400.0)])
def test_timeouts_read_as_go_durations(text: str, seconds: float) -> None:
    assert go_duration_seconds(text) == seconds


def test_a_malformed_timeout_is_go_s_error() -> None:
    with pytest.raises(ServerError, match='time: invalid duration "5"'):
        go_duration_seconds("5")


async def test_trace_call_on_pending_is_refused_as_geth(compat_call: Call) -> None:
    response = await compat_call("debug_traceCall", {"to": CALLER}, "pending")
    assert response["error"]["message"] == "tracing on top of pending is not supported"


async def test_trace_call_requires_a_block(compat_call: Call) -> None:
    response = await compat_call("debug_traceCall", {"to": CALLER})
    assert response["error"] == {"code": -32602, "message": "missing value for required argument 1"}


async def test_struct_logger_charges_the_step_that_runs_out_of_gas_its_cost(compat_call: Call) -> None:
    response = await compat_call("debug_traceCall", {"to": CALLER, "gas": hex(21_000)}, "latest",
                                 {"stateOverrides": {CALLER: {"code": "0x36"}}})
    [step] = response["result"]["structLogs"]
    assert (step["op"], step["gas"], step["gasCost"], step["error"]) == ("CALLDATASIZE", 0, 2, "out of gas")
    assert response["result"]["failed"]


# --- replay fidelity ------------------------------------------------------------------------------

END_OF_BLOCK_SYSTEM_CONTRACTS = {"0x" + bytes(WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS).hex(),
                                 "0x" + bytes(CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS).hex()}
"""Prague empties their request queues after the last transaction: not part of any replayed transaction."""


async def _stored(call: Call, address: str, field: str, value: Any, block: str) -> list[tuple[Any, Any]]:
    """(replayed, stored) pairs for one field of an account's post-state."""
    if field == "balance":
        return [(value, await result(call, "eth_getBalance", address, block))]
    if field == "nonce":
        return [(value, int(await result(call, "eth_getTransactionCount", address, block), 16))]
    if field == "code":
        return [(value, await result(call, "eth_getCode", address, block))]
    if field == "storage":
        return [(int(word, 16), int(await result(call, "eth_getStorageAt", address, slot, block), 16))
                for slot, word in value.items()]
    return []


async def test_replayed_transactions_leave_the_state_the_chain_stored(compat_call: Call) -> None:
    """Every account a block's transactions changed, as prestateTracer's diffs replay it, is
    as the imported chain holds it after the block (bar block rewards, withdrawals and
    end-of-block system calls, which no transaction makes)."""
    head = int(await result(compat_call, "eth_blockNumber"), 16)
    compared = []
    for number in range(1, head + 1):
        block = await result(compat_call, "eth_getBlockByNumber", hex(number), False)
        untraced = {w["address"] for w in block.get("withdrawals", [])} | END_OF_BLOCK_SYSTEM_CONTRACTS
        if block["difficulty"] != "0x0":
            untraced.add(block["miner"])  # the proof-of-work reward
        after: dict[str, dict[str, Any]] = {}
        for trace in await result(compat_call, "debug_traceBlockByNumber", hex(number),
                                  {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}}):
            for address, account in trace["result"]["post"].items():
                after.setdefault(address, {}).update(account)
        for address, account in after.items():
            if address not in untraced:
                for field, value in account.items():
                    compared.extend(await _stored(compat_call, address, field, value, hex(number)))
    assert len(compared) > 300
    assert [pair for pair in compared if pair[0] != pair[1]] == []


async def test_struct_logger_shows_the_refund_counter_across_frames(compat_call: Call) -> None:
    clear_slot0 = "600060005500"  # SSTORE(0, 0), STOP
    state = {CALLER: {"code": "0x" + calling("00")},
             CALLEE: {"code": "0x" + clear_slot0, "state": {"0x" + "00" * 32: "0x" + "01".rjust(64, "0")}}}
    response = await compat_call("debug_traceCall", {"to": CALLER, "gas": "0x100000"}, "latest", {"stateOverrides": state})
    steps = response["result"]["structLogs"]
    after_clear = steps[[step["op"] for step in steps].index("SSTORE") + 1:]
    sstore_clears_refund = 4800
    assert [step.get("refund") for step in after_clear] == [sstore_clears_refund] * len(after_clear)
    assert [step["depth"] for step in after_clear][-2:] == [1, 1]


async def test_trace_call_with_a_tx_index_runs_on_the_state_before_that_transaction(compat_call: Call) -> None:
    recipient = "0x5f552da00dfb4d3749d9e62dcee3c918855a86a0"  # TRANSFER_TX, index 1 of block 25, pays it 1 wei

    async def balance_seen(tx_index: int) -> int:
        trace = await result(compat_call, "debug_traceCall", {"to": recipient}, "0x19",
                             {"tracer": "prestateTracer", "txIndex": hex(tx_index)})
        return int(trace[recipient]["balance"], 16)

    assert await balance_seen(2) - await balance_seen(1) == 1


async def test_trace_call_with_a_tx_index_past_the_block_is_refused(compat_call: Call) -> None:
    block = await result(compat_call, "eth_getBlockByNumber", "0x19", False)
    response = await compat_call("debug_traceCall", {"to": CALLER}, "0x19", {"txIndex": "0x9"})
    assert response["error"]["message"] == f"transaction index 9 out of range for block {block['hash']}"


CREATE_STOP = "600160006000f0" "5000"
"""CREATE (no value) a contract whose init code is the single byte 0x00 (STOP), POP, STOP."""


async def test_call_tracer_names_a_nested_creation_with_its_init_code_and_address(compat_call: Call) -> None:
    frame = await trace_call(compat_call, CREATE_STOP, {"tracer": "callTracer"})
    [created] = frame["calls"]
    address = "0x" + generate_contract_address(Address(bytes.fromhex(CALLER[2:])), 0).hex()
    assert (created["type"], created["input"], created["to"]) == ("CREATE", "0x00", address)


async def test_struct_logger_charges_a_create_without_the_gas_it_hands_over(compat_call: Call) -> None:
    steps = (await trace_call(compat_call, CREATE_STOP, {}))["structLogs"]
    create = next(step for step in steps if step["op"] == "CREATE")
    create_gas, first_memory_word, one_initcode_word = 32_000, 3, 2
    assert create["gasCost"] == create_gas + first_memory_word + one_initcode_word
