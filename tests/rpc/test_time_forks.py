"""Blocks that are not on the chain run the fork their timestamp reaches, as geth's ``Rules(number, isMerge, time)``.

The chain is the rpc-compat Prague chain (head 45 at time 450) in a real LevelDB, its
genesis configured with Osaka at time 474 and Amsterdam at 600: times no stored block
reached, so the stored schedule ends at Prague. A simulated block, or a call whose
block context is overridden, at or past Osaka's time runs Osaka's rules; one before it
runs Prague's. CLZ (EIP-7939, opcode 0x1e) exists only from Osaka on; modexp costs more
from Osaka on (EIP-7883).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chain.importer import import_chain
from rpc.service import RpcService
from storage.leveldb import LevelDB
from tests.rpc.compat import SUITE
from tests.rpc.conftest import Call, caller

HEAD_TIME = 450
OSAKA_TIME = HEAD_TIME + 24
"""The second simulated block's default time: the first (head + 12 s) is still Prague."""
AMSTERDAM_TIME = 600

CLZ_OF_ONE = "0x60011e60005260206000f3"
"""PUSH1 1 CLZ PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN: returns CLZ(1) = 255 from Osaka on."""
CLZ_CONTRACT = "0x" + "c1" * 20
SENDER = "0x" + "c0" + "00" * 19
CLZ_RESULT = "0x" + "00" * 31 + "ff"
PRAGUE_REFUSAL = {"message": "invalid opcode: opcode 0x1e not defined", "code": -32015}
MODEXP_WITHIN_300_GAS = ("0x" + "6001600052" + "6001602052" + "6001604052" + "6002606053" + "6003606153" + "6005606253"
                         + "6000" + "6000" + "6063" + "6000" + "6000" + "6005" + "61012c" + "f1"
                         + "600052" + "60206000f3")
"""CALLs modexp (0x05) for 2 ** 3 % 5 with 300 gas and returns whether it succeeded: Prague's modexp
charges 200 (EIP-2565's minimum), Osaka's 500 (EIP-7883's)."""
WRAPPER = "0x" + "c2" * 20


@pytest.fixture(scope="module")
def osaka_coming_db(tmp_path_factory: pytest.TempPathFactory) -> LevelDB:
    """The Prague chain under a genesis.json that schedules Osaka and Amsterdam after its head."""
    root = Path(tmp_path_factory.mktemp("osaka-coming"))
    genesis = json.loads((SUITE / "genesis.json").read_text())
    genesis["config"] |= {"osakaTime": OSAKA_TIME, "amsterdamTime": AMSTERDAM_TIME}
    (root / "genesis.json").write_text(json.dumps(genesis))
    db = LevelDB(root / "chaindb")
    result = import_chain(db, root / "genesis.json", SUITE / "chain.rlp")
    assert result.config.forks[-1] == (45, "prague") and result.head_number == 45
    return db


@pytest.fixture
def call(osaka_coming_db: LevelDB) -> Call:
    return caller(RpcService(osaka_coming_db))


def clz_block(**overrides: Any) -> dict[str, Any]:
    """A simulated block calling the CLZ contract (its code put in place by a state override)."""
    block: dict[str, Any] = {"stateOverrides": {CLZ_CONTRACT: {"code": CLZ_OF_ONE}},
                             "calls": [{"from": SENDER, "to": CLZ_CONTRACT, "gas": hex(100_000)}]}
    if overrides:
        block["blockOverrides"] = overrides
    return block


async def simulate(call: Call, blocks: list[dict[str, Any]], **options: Any) -> Any:
    return await call("eth_simulateV1", {"blockStateCalls": blocks, **options}, "latest")


async def test_a_simulated_block_at_the_fork_time_runs_the_fork_no_stored_block_reached(call: Call) -> None:
    response = await simulate(call, [clz_block(time=hex(OSAKA_TIME))])
    result = response["result"][0]["calls"][0]
    assert (result["status"], result["returnData"]) == ("0x1", CLZ_RESULT)


async def test_chained_simulated_blocks_switch_forks_where_their_default_times_reach_it(call: Call) -> None:
    response = await simulate(call, [clz_block(), clz_block()])
    assert [int(block["timestamp"], 16) for block in response["result"]] == [HEAD_TIME + 12, OSAKA_TIME]
    first, second = (block["calls"][0] for block in response["result"])
    assert first["error"] == PRAGUE_REFUSAL
    assert (second["status"], second["returnData"]) == ("0x1", CLZ_RESULT)


async def test_the_first_osaka_block_carries_the_prague_parents_blob_gas_under_eip_7918(call: Call) -> None:
    """7 blobs in a Prague block whose base fee outprices blobs: Osaka's child keeps 7 * 3/9 of them
    as excess (EIP-7918's reserve price, geth's ``CalcExcessBlobGas(config, parent, header.Time)``),
    where Prague's rule would keep 7 - 6."""
    blobs = {"from": SENDER, "to": CLZ_CONTRACT, "maxFeePerGas": hex(10**10), "maxPriorityFeePerGas": "0x0",
             "maxFeePerBlobGas": hex(10**9), "blobVersionedHashes": ["0x01" + "00" * 31] * 7}
    response = await simulate(call, [
        {"stateOverrides": {SENDER: {"balance": hex(10**20)}}, "calls": [blobs]},
        {"blockOverrides": {"time": hex(OSAKA_TIME)}},
    ], validation=True)
    prague, osaka = response["result"]
    assert int(prague["blobGasUsed"], 16) == 7 * 131072
    assert int(osaka["excessBlobGas"], 16) == 7 * 131072 * 3 // 9


async def test_a_simulated_block_reaching_a_fork_ethercattle_lacks_is_refused_naming_it(call: Call) -> None:
    response = await simulate(call, [clz_block(time=hex(AMSTERDAM_TIME))])
    assert response["error"]["code"] == -32000
    assert "amsterdam, which ethercattle does not implement yet" in response["error"]["message"]


async def test_eth_call_runs_the_fork_its_overridden_time_reaches(call: Call) -> None:
    """geth's ``doCall`` takes its rules from the block context after the overrides."""
    args, code = {"from": SENDER, "to": CLZ_CONTRACT}, {CLZ_CONTRACT: {"code": CLZ_OF_ONE}}
    on_the_head = await call("eth_call", args, "latest", code)
    at_osaka_time = await call("eth_call", args, "latest", code, {"time": hex(OSAKA_TIME)})
    assert on_the_head["error"]["message"] == PRAGUE_REFUSAL["message"]
    assert at_osaka_time["result"] == CLZ_RESULT


async def test_eth_call_runs_the_precompiles_of_the_fork_its_overridden_time_reaches(call: Call) -> None:
    """geth's ``doCall`` picks precompiles by the overridden context's rules too (eth_simulateV1 does not)."""
    response = await call("eth_call", {"from": SENDER, "to": WRAPPER}, "latest",
                          {WRAPPER: {"code": MODEXP_WITHIN_300_GAS}}, {"time": hex(OSAKA_TIME)})
    assert response["result"] == "0x" + "00" * 32


async def test_simulated_blocks_keep_their_base_blocks_precompiles_as_geth(call: Call) -> None:
    """geth's simulator takes the precompiles from its base block (``activePrecompiles(sim.base)``),
    even for a block whose time reaches Osaka: modexp is priced as in Prague there too."""
    block = {"blockOverrides": {"time": hex(OSAKA_TIME)},
             "stateOverrides": {WRAPPER: {"code": MODEXP_WITHIN_300_GAS}, CLZ_CONTRACT: {"code": CLZ_OF_ONE}},
             "calls": [{"from": SENDER, "to": WRAPPER, "gas": hex(100_000)},
                       {"from": SENDER, "to": CLZ_CONTRACT, "gas": hex(100_000)}]}
    modexp, clz = (await simulate(call, [block]))["result"][0]["calls"]
    assert clz["returnData"] == CLZ_RESULT
    assert modexp["returnData"] == "0x" + "00" * 31 + "01"
