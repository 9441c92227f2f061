"""Chains laid out as real geth genesis files do import: each test builds one.

Each layout is a geth genesis.json written by the test; a chain is mined on it with
the dev miner (one transfer per block, timestamps chosen to cross the time forks),
exported as chain.rlp, and imported into an empty database with full validation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth.db.atomic import AtomicDB
from eth_account import Account

from chain.dev import DevMiner, dev_accounts
from chain.errors import InvalidGenesis, UnsupportedChain
from chain.forks import BlockSummary, chain_config_for
from chain.genesis import genesis_params, initialize_chain, parse_genesis
from chain.importer import ImportResult, import_chain

CHAIN_ID = 4242
GWEI = 10**9
SENDER, SENDER_KEY = dev_accounts()[0]
RECIPIENT = dev_accounts()[1][0]
ALL_BLOCK_FORKS_AT_ZERO = {
    key: 0
    for key in ("homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock",
                "constantinopleBlock", "petersburgBlock", "istanbulBlock", "berlinBlock",
                "londonBlock")
}


def _genesis(difficulty: int = 0, **config: Any) -> dict[str, Any]:
    return {
        "config": {"chainId": CHAIN_ID, **ALL_BLOCK_FORKS_AT_ZERO, **config},
        "difficulty": hex(difficulty),
        "gasLimit": hex(30_000_000),
        "timestamp": "0x0",
        "extraData": "0x",
        "alloc": {"0x" + SENDER.hex(): {"balance": hex(10**21)}},
    }


def _transfer(nonce: int) -> bytes:
    signed = Account.from_key(SENDER_KEY).sign_transaction({
        "type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": RECIPIENT, "value": 1,
        "gas": 21_000, "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI,
    })
    return bytes(signed.raw_transaction)


def build_and_import(tmp_path: Path, document: dict[str, Any], timestamps: list[int]) -> ImportResult:
    """Mine blocks at ``timestamps`` on ``document``'s genesis, export them, import them."""
    spec = parse_genesis(document)
    planned = [BlockSummary(n, 0, t) for n, t in enumerate(timestamps, start=1)]
    config = chain_config_for(spec, planned)
    mined_db = AtomicDB()
    initialize_chain(mined_db, config, genesis_params(spec, config.forks[0][1]), spec.alloc)
    miner = DevMiner(mined_db)
    blocks = []
    for nonce, timestamp in enumerate(timestamps):
        mined = miner.mine([_transfer(nonce)], timestamp=timestamp)
        assert not mined.skipped, mined.skipped[0].error
        blocks.append(mined.block)
    (tmp_path / "genesis.json").write_text(json.dumps(document))
    (tmp_path / "chain.rlp").write_bytes(b"".join(rlp.encode(block) for block in blocks))
    result = import_chain(AtomicDB(), tmp_path / "genesis.json", tmp_path / "chain.rlp")
    assert result.head_hash == blocks[-1].hash
    return result


def test_genesis_at_ttd_with_time_forks_at_zero_imports(tmp_path: Path) -> None:
    # hive's layout: the genesis' own difficulty reaches TTD, Shanghai and Cancun at time 0.
    document = _genesis(difficulty=0x20000, terminalTotalDifficulty=0x20000,
                        shanghaiTime=0, cancunTime=0)

    result = build_and_import(tmp_path, document, [12, 24, 36])

    assert result.imported == 3
    assert result.config.forks == ((0, "cancun"),)


def test_genesis_past_ttd_keeps_its_difficulty_and_nonce(tmp_path: Path) -> None:
    document = {**_genesis(difficulty=0x400000, terminalTotalDifficulty=0, shanghaiTime=0,
                           cancunTime=0, pragueTime=0, osakaTime=0),
                "nonce": "0x42"}

    result = build_and_import(tmp_path, document, [1, 2])

    assert result.config.forks == ((0, "osaka"),)
    assert result.imported == 2


def test_every_time_fork_at_genesis_runs_osaka(tmp_path: Path) -> None:
    document = _genesis(terminalTotalDifficulty=0, shanghaiTime=0, cancunTime=0,
                        pragueTime=0, osakaTime=0)

    result = build_and_import(tmp_path, document, [5, 10])

    assert result.config.forks == ((0, "osaka"),)


def test_time_forks_after_genesis_through_bpo_forks_import(tmp_path: Path) -> None:
    document = _genesis(
        terminalTotalDifficulty=0, mergeNetsplitBlock=0, shanghaiTime=10, cancunTime=20,
        pragueTime=30, osakaTime=40, bpo1Time=50, bpo2Time=60,
        depositContractAddress="0x00000000219ab540356cbb839cbe05303d7705fa",
        blobSchedule={
            "cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3338477},
            "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716},
            "osaka": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716},
            "bpo1": {"target": 10, "max": 15, "baseFeeUpdateFraction": 8346193},
            "bpo2": {"target": 14, "max": 21, "baseFeeUpdateFraction": 11684671},
        },
    )

    result = build_and_import(tmp_path, document, [5, 10, 15, 20, 30, 40, 45, 50, 60, 65])

    assert result.config.forks == (
        (0, "paris"), (2, "shanghai"), (4, "cancun"), (5, "prague"), (6, "osaka"),
        (8, "bpo1"), (9, "bpo2"),
    )
    assert result.config.blob_parameters("bpo2").max == 21


def test_time_forks_sharing_a_timestamp_start_together(tmp_path: Path) -> None:
    document = _genesis(terminalTotalDifficulty=0, shanghaiTime=0, cancunTime=10,
                        pragueTime=10, osakaTime=10)

    result = build_and_import(tmp_path, document, [5, 10, 15])

    assert result.config.forks == ((0, "shanghai"), (2, "osaka"))


def test_a_time_fork_left_out_before_a_configured_one_is_refused_by_name() -> None:
    document = _genesis(terminalTotalDifficulty=0, shanghaiTime=0, pragueTime=10)

    with pytest.raises(InvalidGenesis, match="cancunTime not enabled, but pragueTime enabled at timestamp 10"):
        parse_genesis(document)


def test_a_time_fork_before_the_one_it_follows_is_refused_by_name() -> None:
    document = _genesis(terminalTotalDifficulty=0, shanghaiTime=0, cancunTime=20, pragueTime=10)

    with pytest.raises(InvalidGenesis, match="cancunTime enabled at timestamp 20, but pragueTime enabled at timestamp 10"):
        parse_genesis(document)


def test_a_bpo_fork_may_be_skipped(tmp_path: Path) -> None:
    document = _genesis(terminalTotalDifficulty=0, shanghaiTime=0, cancunTime=0, pragueTime=0,
                        osakaTime=0, bpo2Time=10,
                        blobSchedule={"bpo2": {"target": 14, "max": 21, "baseFeeUpdateFraction": 11684671}})

    result = build_and_import(tmp_path, document, [5, 10])

    assert result.config.forks == ((0, "osaka"), (2, "bpo2"))


def test_bpo_fork_without_its_blob_schedule_names_the_field() -> None:
    document = _genesis(terminalTotalDifficulty=0, shanghaiTime=0, cancunTime=0,
                        pragueTime=0, osakaTime=0, bpo1Time=10)

    with pytest.raises(InvalidGenesis, match=r"bpo1Time is set but blobSchedule\.bpo1 is missing"):
        parse_genesis(document)


def test_time_fork_at_genesis_below_ttd_names_the_fork() -> None:
    document = _genesis(difficulty=0x10, terminalTotalDifficulty=0x1000, shanghaiTime=0)

    with pytest.raises(UnsupportedChain, match="shanghai activates at block 0, before the merge"):
        chain_config_for(parse_genesis(document), [])
