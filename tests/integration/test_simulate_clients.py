"""web3.py and ethers v6 simulate through HAProxy in front of a replica: eth_simulateV1 as wallets call it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.harness import Cluster
from tests.integration.test_loadbalancer import Balanced, ethers_installed

pytestmark = pytest.mark.broker

SENDER, RECIPIENT = "0x" + "c0" * 20, "0x" + "c1" * 20
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
PAYLOAD: dict[str, Any] = {
    "blockStateCalls": [
        {"stateOverrides": {SENDER: {"balance": hex(10**18)}},
         "calls": [{"from": SENDER, "to": RECIPIENT, "value": hex(10**15)}]},
        {"blockOverrides": {"baseFeePerGas": "0x7"}, "calls": [{"from": RECIPIENT, "to": SENDER, "value": "0x1"}]},
    ],
    "traceTransfers": True,
}


@pytest.fixture
def balanced(cluster: Cluster) -> Iterator[Balanced]:
    made = Balanced(cluster, names=("ra",))
    yield made
    made.haproxy.stop()


def number(value: Any) -> int:
    """A quantity as ethers leaves it (hex text) or web3.py formats it (int)."""
    return value if isinstance(value, int) else int(value, 16)


def hex_text(value: Any) -> str:
    """A hash as ethers leaves it (hex text) or web3.py formats it (bytes)."""
    return "0x" + bytes(value).hex() if isinstance(value, bytes) else str(value)


def check_blocks(blocks: list[Any], head: int) -> None:
    """Two chained blocks after the head, each call a success with its ERC-7528 transfer log."""
    assert [number(block["number"]) for block in blocks] == [head + 1, head + 2]
    assert hex_text(blocks[1]["parentHash"]) == hex_text(blocks[0]["hash"])
    assert number(blocks[1]["baseFeePerGas"]) == 7
    for block in blocks:
        (call,) = block["calls"]
        assert number(call["status"]) == 1
        (log,) = call["logs"]
        assert hex_text(log["topics"][0]) == TRANSFER_TOPIC


def test_web3_and_ethers_simulate_through_haproxy(balanced: Balanced) -> None:
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(balanced.haproxy.url + "/"))
    head = w3.eth.block_number
    from_web3 = w3.eth.simulate_v1(PAYLOAD, head)  # type: ignore[arg-type]  # by number: a new block cannot move the base
    check_blocks(list(from_web3), head)

    script = Path(__file__).with_name("ethers_simulate.cjs")
    done = subprocess.run(["node", str(script), str(ethers_installed()), balanced.haproxy.url + "/", json.dumps(PAYLOAD)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    check_blocks(answer["blocks"], answer["head"])
