"""Genesis parsing: geth's defaults, hashes and refusals."""

from __future__ import annotations

from typing import Any

import pytest
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA256, ZERO_HASH32
from eth.db.atomic import AtomicDB

from chain.errors import InvalidGenesis, UnsupportedChain
from chain.forks import chain_config_for
from chain.genesis import (
    GETH_GENESIS_DIFFICULTY,
    GETH_GENESIS_GAS_LIMIT,
    GETH_INITIAL_BASE_FEE,
    genesis_params,
    initialize_chain,
    load_genesis,
    parse_genesis,
)
from chain.importer import block_summary, read_raw_blocks


def _minimal(config: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"config": {"chainId": 7, **(config or {})}, "alloc": {}, **fields}


def test_rpc_compat_genesis_hash_equals_geths(rpc_compat: Any) -> None:
    spec = load_genesis(rpc_compat.genesis)
    summaries = [block_summary(raw) for raw in read_raw_blocks(rpc_compat.chain)]
    config = chain_config_for(spec, summaries)

    chain = initialize_chain(AtomicDB(), config, genesis_params(spec, config.forks[0][1]), spec.alloc)

    recorded = rpc_compat.result("eth_getBlockByNumber", "get-genesis")
    genesis = chain.get_canonical_head()
    assert "0x" + genesis.hash.hex() == recorded["hash"]
    assert "0x" + genesis.state_root.hex() == recorded["stateRoot"]


def test_cancun_genesis_uses_geths_zero_parent_beacon_root() -> None:
    params = genesis_params(parse_genesis(_minimal()), "cancun")

    assert params["parent_beacon_block_root"] == ZERO_HASH32
    assert params["blob_gas_used"] == 0 and params["excess_blob_gas"] == 0
    assert params["withdrawals_root"] == BLANK_ROOT_HASH
    assert "requests_hash" not in params


def test_prague_genesis_carries_the_empty_requests_hash() -> None:
    assert genesis_params(parse_genesis(_minimal()), "prague")["requests_hash"] == EMPTY_SHA256


def test_london_genesis_defaults_base_fee_to_one_gwei() -> None:
    spec = parse_genesis(_minimal())

    assert genesis_params(spec, "london")["base_fee_per_gas"] == GETH_INITIAL_BASE_FEE
    assert "base_fee_per_gas" not in genesis_params(spec, "berlin")


def test_absent_header_fields_take_geths_defaults() -> None:
    header = parse_genesis(_minimal()).header

    assert header.gas_limit == GETH_GENESIS_GAS_LIMIT
    assert header.difficulty == GETH_GENESIS_DIFFICULTY


def test_quantities_may_be_hex_decimal_strings_or_numbers() -> None:
    spec = parse_genesis(
        _minimal(
            {"homesteadBlock": "0x2", "eip150Block": 3, "terminalTotalDifficulty": "100"},
            alloc={"0x" + "11" * 20: {"balance": "1000", "nonce": "0x3", "storage": {"0x01": "02"}}},
        )
    )

    assert spec.block_forks[:2] == (("homestead", 2), ("tangerine-whistle", 3))
    assert spec.terminal_total_difficulty == 100
    account = spec.alloc[bytes.fromhex("11" * 20)]  # type: ignore[index]
    assert (account["balance"], account["nonce"], account["storage"]) == (1000, 3, {1: 2})


def test_petersburg_defaults_to_constantinople_as_in_geth() -> None:
    spec = parse_genesis(_minimal({"constantinopleBlock": 5}))

    assert ("petersburg", 5) in spec.block_forks


def test_different_eip155_and_eip158_blocks_are_unsupported() -> None:
    with pytest.raises(UnsupportedChain, match="eip158Block"):
        parse_genesis(_minimal({"eip155Block": 1, "eip158Block": 2}))


def test_non_default_blob_schedule_is_unsupported() -> None:
    schedule = {"cancun": {"target": 4, "max": 8, "baseFeeUpdateFraction": 3338477}}
    with pytest.raises(UnsupportedChain, match="blobSchedule"):
        parse_genesis(_minimal({"blobSchedule": schedule}))


def test_malformed_genesis_is_refused_with_the_field_name() -> None:
    with pytest.raises(InvalidGenesis, match="gasLimit"):
        parse_genesis(_minimal(gasLimit="lots"))
