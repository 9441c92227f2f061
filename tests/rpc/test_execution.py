"""eth_call, eth_estimateGas and eth_createAccessList on a dev chain with deployed contracts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson
import pytest
from eth.db.atomic import AtomicDB
from eth_account import Account
from eth_utils import to_checksum_address

from chain.dev import DEV_CHAIN_ID, DevMiner, dev_accounts, init_dev_chain
from rpc.limits import RpcLimits
from rpc.service import RpcService
from tests.rpc.conftest import Call, caller

ERROR_SELECTOR = "08c379a0"
REASON = "nope"
REVERT_DATA = (ERROR_SELECTOR + (32).to_bytes(32, "big").hex() + (4).to_bytes(32, "big").hex()
               + REASON.encode().hex().ljust(64, "0"))
REVERT_RUNTIME = "6064600c60003960646000fd" + REVERT_DATA
"""CODECOPY the 100-byte Error("nope") payload that follows, then REVERT with it."""
GAS_HUNGRY_RUNTIME = "5a630100010011600b57005b63ffffffff51"
"""Runs out of gas (an MLOAD at 4 GiB) unless it starts with more than 0x01000100 gas."""
LOOP_RUNTIME = "5b600056"
"""JUMPDEST PUSH1 0 JUMP: runs until gas or time runs out."""
NUMBER_RUNTIME = "4360005260206000f3"
"""Returns NUMBER."""
SLOT0_RUNTIME = "60005460005260206000f3"
"""Returns storage slot 0."""
SLOAD_TWO_RUNTIME = "600054506001545000"
"""SLOAD slot 0 and slot 1, then STOP."""
STORE_SPIN_LOAD_RUNTIME = "6000356000556104005b600190038060095750600054600052" + "60206000f3"
"""SSTORE the first calldata word in slot 0, count down from 1024 (time for the other thread to run),
then return slot 0."""


def init_code(runtime: str) -> str:
    """Constructor that returns ``runtime`` (CODECOPY it from after the 12-byte prelude)."""
    size = len(runtime) // 2
    return f"60{size:02x}600c60003960{size:02x}6000f3" + runtime


@dataclass
class DevChain:
    db: AtomicDB
    reverter: str
    sender: str


@pytest.fixture(scope="module")
def dev_chain() -> DevChain:
    db = AtomicDB()
    init_dev_chain(db)
    miner = DevMiner(db)
    address, key = dev_accounts()[0]
    tx = Account.sign_transaction({
        "chainId": DEV_CHAIN_ID, "nonce": 0, "gas": 200_000, "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9, "to": None, "value": 0, "data": "0x" + init_code(REVERT_RUNTIME),
    }, key)
    mined = miner.mine([tx.raw_transaction])
    assert mined.included, mined.skipped
    miner.mine([])
    from eth._utils.address import generate_contract_address
    reverter = "0x" + generate_contract_address(address, 0).hex()
    return DevChain(db, reverter, "0x" + address.hex())


@pytest.fixture
def call(dev_chain: DevChain) -> Call:
    return caller(RpcService(dev_chain.db))


def code_at(address: str, runtime: str) -> dict[str, dict[str, str]]:
    return {address: {"code": "0x" + runtime}}


async def test_call_to_reverting_contract_is_code_3_with_revert_data(call: Call, dev_chain: DevChain) -> None:
    response = await call("eth_call", {"to": dev_chain.reverter}, "latest")
    assert response["error"] == {"code": 3, "message": f"execution reverted: {REASON}", "data": "0x" + REVERT_DATA}


async def test_estimate_gas_of_reverting_call_is_code_3_with_revert_data(call: Call, dev_chain: DevChain) -> None:
    response = await call("eth_estimateGas", {"from": dev_chain.sender, "to": dev_chain.reverter})
    assert response["error"]["code"] == 3
    assert response["error"]["data"] == "0x" + REVERT_DATA


async def test_call_runs_in_the_requested_blocks_own_context(call: Call) -> None:
    target = "0x" + "42" * 20
    for block in ("0x1", "0x2"):
        response = await call("eth_call", {"to": target}, block, code_at(target, NUMBER_RUNTIME))
        assert int(response["result"], 16) == int(block, 16)


async def test_state_override_storage_is_seen_by_the_call(call: Call) -> None:
    target = "0x" + "43" * 20
    override = {target: {"code": "0x" + SLOT0_RUNTIME, "stateDiff": {"0x" + "00" * 32: "0x" + "00" * 31 + "2a"}}}
    response = await call("eth_call", {"to": target}, "latest", override)
    assert int(response["result"], 16) == 42


async def test_calls_at_one_block_share_the_accounts_and_slots_they_read(dev_chain: DevChain) -> None:
    service = RpcService(dev_chain.db)
    call = caller(service)
    reads = service.backend.call_reads
    target = "0x" + "46" * 20
    stored = {target: {"code": "0x" + SLOAD_TWO_RUNTIME,  # one override, so one storage root at each call
                       "stateDiff": {"0x" + "00" * 32: "0x" + "00" * 31 + "01", "0x" + "00" * 31 + "01": "0x" + "00" * 31 + "02"}}}
    message = {"from": dev_chain.sender, "to": dev_chain.reverter}
    await call("eth_call", message, "latest")
    await call("eth_call", {"to": target}, "latest", stored)
    shared = (len(reads.account_states), len(reads.slots))
    assert shared[0] >= 2 and shared[1] >= 2  # the sender and the contract at the head's root; slots 0 and 1
    await call("eth_call", message, "latest")
    await call("eth_call", {"to": target}, "latest", stored)
    assert (len(reads.account_states), len(reads.slots)) == shared


async def test_calls_running_at_once_on_both_threads_never_see_each_others_writes(dev_chain: DevChain) -> None:
    call = caller(RpcService(dev_chain.db, limits=RpcLimits(response_cache_bytes=0)))
    target = "0x" + "47" * 20
    responses = await asyncio.gather(*(
        call("eth_call", {"to": target, "data": "0x" + value.to_bytes(32, "big").hex()}, "latest",
             code_at(target, STORE_SPIN_LOAD_RUNTIME))
        for value in range(1, 13)))
    assert [int(response["result"], 16) for response in responses] == list(range(1, 13))


async def test_a_state_override_is_never_seen_by_a_later_call_at_the_same_block(call: Call) -> None:
    target = "0x" + "45" * 20
    override = {target: {"code": "0x" + SLOT0_RUNTIME, "stateDiff": {"0x" + "00" * 32: "0x" + "00" * 31 + "07"}}}
    assert int((await call("eth_call", {"to": target}, "latest", override))["result"], 16) == 7
    assert (await call("eth_call", {"to": target}, "latest"))["result"] == "0x"  # no code there without the override
    assert int((await call("eth_call", {"to": target}, "latest", override))["result"], 16) == 7
    other = {target: {"code": "0x" + SLOT0_RUNTIME, "stateDiff": {"0x" + "00" * 32: "0x" + "00" * 31 + "08"}}}
    assert int((await call("eth_call", {"to": target}, "latest", other))["result"], 16) == 8


async def test_state_override_with_state_and_state_diff_is_refused(call: Call) -> None:
    target = "0x" + "44" * 20
    override: dict[str, dict[str, dict[str, str]]] = {target: {"state": {}, "stateDiff": {}}}
    response = await call("eth_call", {"to": target}, "latest", override)
    assert response["error"] == {"code": -32000, "message": f"account {to_checksum_address(target)} has both 'state' and 'stateDiff'"}


async def test_block_override_changes_number(call: Call) -> None:
    target = "0x" + "45" * 20
    response = await call("eth_call", {"to": target}, "latest", code_at(target, NUMBER_RUNTIME), {"number": "0x99"})
    assert int(response["result"], 16) == 0x99


async def test_moved_precompile_answers_at_its_new_address(call: Call) -> None:
    identity, moved = "0x" + "00" * 19 + "04", "0x" + "00" * 18 + "1234"
    override = {identity: {"movePrecompileToAddress": moved}}
    response = await call("eth_call", {"to": moved, "input": "0xdeadbeef"}, "latest", override)
    assert response["result"] == "0xdeadbeef"


async def test_call_past_the_time_limit_is_aborted(dev_chain: DevChain) -> None:
    service = RpcService(dev_chain.db, limits=RpcLimits(call_timeout_seconds=0.2))
    target = "0x" + "46" * 20
    response = await caller(service)("eth_call", {"to": target}, "latest", code_at(target, LOOP_RUNTIME))
    assert response["error"] == {"code": -32000, "message": "execution aborted (timeout = 200ms)"}


async def test_call_gas_is_capped_by_the_gas_cap(dev_chain: DevChain) -> None:
    service = RpcService(dev_chain.db, limits=RpcLimits(call_gas_cap=100_000))
    target = "0x" + "47" * 20
    response = await caller(service)("eth_call", {"to": target, "gas": "0xffffffff"}, "latest",
                                     code_at(target, LOOP_RUNTIME))
    assert response["error"] == {"code": -32000, "message": "out of gas"}


async def test_call_from_a_poor_sender_with_a_gas_price_lacks_funds(call: Call) -> None:
    poor = "0x" + "48" * 20
    response = await call("eth_call", {"from": poor, "to": poor, "gasPrice": "0x3b9aca00", "gas": "0x5208"})
    assert response["error"]["message"] == (
        f"err: insufficient funds for gas * price + value: address {to_checksum_address(poor)} "
        f"have 0 want {0x5208 * 0x3b9aca00} (supplied gas 21000)")


async def test_estimate_gas_of_a_transfer_is_21000(call: Call, dev_chain: DevChain) -> None:
    response = await call("eth_estimateGas", {"from": dev_chain.sender, "to": "0x" + "49" * 20, "value": "0x1"})
    assert response["result"] == "0x5208"


async def test_estimate_gas_of_an_endless_loop_exceeds_the_allowance(dev_chain: DevChain) -> None:
    service = RpcService(dev_chain.db, limits=RpcLimits(call_gas_cap=100_000))
    target = "0x" + "4a" * 20
    response = await caller(service)("eth_estimateGas", {"to": target, "input": "0x01"}, "latest",
                                     code_at(target, LOOP_RUNTIME))
    assert response["error"] == {"code": -32000, "message": "gas required exceeds allowance (100000)"}


async def test_estimate_gas_under_osaka_is_bounded_by_the_transaction_gas_cap(call: Call) -> None:
    target = "0x" + "4c" * 20
    response = await call("eth_estimateGas", {"to": target, "input": "0x01"}, "latest",
                          code_at(target, GAS_HUNGRY_RUNTIME))
    assert response["error"] == {"code": -32000, "message": "gas required exceeds allowance (16777216)"}


async def test_create_access_list_lists_the_slots_read(call: Call, dev_chain: DevChain) -> None:
    target = "0x" + "4b" * 20
    response = await call("eth_createAccessList", {"from": dev_chain.sender, "to": target}, "latest",
                          code_at(target, SLOAD_TWO_RUNTIME))
    assert response["result"]["accessList"] == [{"address": target, "storageKeys": [
        "0x" + "00" * 32, "0x" + "00" * 31 + "01"]}]
    assert int(response["result"]["gasUsed"], 16) > 21_000


def loop_batch(size: int, target: str) -> bytes:
    """A batch of ``size`` eth_call of an endless loop (code put at ``target`` by a state override)."""
    return orjson.dumps([{"jsonrpc": "2.0", "id": n, "method": "eth_call",
                          "params": [{"to": target}, "latest", code_at(target, LOOP_RUNTIME)]} for n in range(size)])


async def test_a_batch_of_endless_loops_ends_at_the_request_deadline(dev_chain: DevChain) -> None:
    service = RpcService(dev_chain.db, limits=RpcLimits(call_timeout_seconds=0.3, request_timeout_seconds=0.4))
    started = time.monotonic()
    answers = orjson.loads(await service.handle_body(loop_batch(1000, "0x" + "4c" * 20)) or b"null")
    assert time.monotonic() - started < 10  # not 1000 x 0.3 s (the bound leaves room for a loaded box: 1.5 s failed once)
    assert [a["error"]["message"] for a in answers[:2]] == ["execution aborted (timeout = 300ms)"] * 2
    assert {a["error"]["code"] for a in answers[2:]} == {-32002} and len(answers) == 1000


async def test_a_batch_shares_one_gas_budget(dev_chain: DevChain) -> None:
    service = RpcService(dev_chain.db, limits=RpcLimits(call_gas_cap=100_000, request_gas_budget=150_000))
    answers = orjson.loads(await service.handle_body(loop_batch(3, "0x" + "4d" * 20)) or b"null")
    assert [a["error"]["message"] for a in answers] == [
        "out of gas", "out of gas", "request gas budget exhausted (150000 gas per request)"]
    again = orjson.loads(await service.handle_body(loop_batch(1, "0x" + "4d" * 20)) or b"null")
    assert again[0]["error"]["message"] == "out of gas"  # the next request has a budget of its own


async def test_an_execution_pauses_while_the_apply_agent_is_behind(dev_chain: DevChain) -> None:
    caught_up_at = time.monotonic() + 0.3
    service = RpcService(dev_chain.db, limits=RpcLimits(call_gas_cap=100_000),
                         behind=lambda: "3 messages behind" if time.monotonic() < caught_up_at else None)
    target = "0x" + "4e" * 20
    response = await caller(service)("eth_call", {"to": target}, "latest", code_at(target, LOOP_RUNTIME))
    assert response["error"]["message"] == "out of gas"  # it ran to its end, after the pause
    assert time.monotonic() >= caught_up_at
