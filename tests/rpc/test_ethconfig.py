"""EIP-7910 eth_config on a chain with forks still to come."""

from __future__ import annotations

from typing import Any

import pytest
from eth.db.atomic import AtomicDB

from chain.forks import chain_config_for
from chain.genesis import genesis_params, initialize_chain, parse_genesis
from rpc.service import RpcService
from tests.rpc.conftest import caller

BPO1_TIME, BPO2_TIME = 10**10, 2 * 10**10
BLOB_SCHEDULE = {
    "osaka": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716},
    "bpo1": {"target": 10, "max": 15, "baseFeeUpdateFraction": 8346193},
    "bpo2": {"target": 14, "max": 21, "baseFeeUpdateFraction": 11684671},
}


@pytest.fixture(scope="module")
def config() -> Any:
    forks = ("homestead", "eip150", "eip155", "eip158", "byzantium", "constantinople",
             "petersburg", "istanbul", "berlin", "london")
    spec = parse_genesis({
        "config": {"chainId": 99, **{f"{name}Block": 0 for name in forks},
                   "terminalTotalDifficulty": 0, "shanghaiTime": 0, "cancunTime": 0,
                   "pragueTime": 0, "osakaTime": 0, "bpo1Time": BPO1_TIME, "bpo2Time": BPO2_TIME,
                   "amsterdamTime": 3 * 10**10,
                   "blobSchedule": BLOB_SCHEDULE},
        "difficulty": "0x0", "gasLimit": "0x1c9c380", "alloc": {},
    })
    db = AtomicDB()
    chain_config = chain_config_for(spec, [])
    initialize_chain(db, chain_config, genesis_params(spec, "osaka"), spec.alloc)
    return caller(RpcService(db))


async def test_current_fork_is_osaka_with_its_blob_schedule(config: Any) -> None:
    current = (await config("eth_config"))["result"]["current"]

    assert (current["activationTime"], current["blobSchedule"]) == (0, BLOB_SCHEDULE["osaka"])
    assert current["chainId"] == "0x63"
    assert current["precompiles"]["P256VERIFY"] == "0x" + "00" * 18 + "0100"


async def test_next_is_the_first_bpo_fork_and_last_the_final_one_ethercattle_knows(config: Any) -> None:
    result = (await config("eth_config"))["result"]

    assert (result["next"]["activationTime"], result["next"]["blobSchedule"]) == (BPO1_TIME, BLOB_SCHEDULE["bpo1"])
    assert (result["last"]["activationTime"], result["last"]["blobSchedule"]) == (BPO2_TIME, BLOB_SCHEDULE["bpo2"])


async def test_each_fork_has_its_own_fork_id(config: Any) -> None:
    result = (await config("eth_config"))["result"]

    assert len({result[key]["forkId"] for key in ("current", "next", "last")}) == 3
