"""Chain logic of following: block 0 against the upstream's, forks activated as blocks arrive."""

from __future__ import annotations

import pytest
from eth.constants import BLANK_ROOT_HASH

from chain.dev import dev_genesis_spec
from chain.errors import ChainMismatch
from chain.forks import BlockSummary
from chain.genesis import load_genesis
from chain.live import check_genesis, config_for_block, genesis_config, genesis_header
from tests.rpc.compat import SUITE


def test_an_upstream_genesis_equal_to_ours_is_stored_as_is() -> None:
    spec = dev_genesis_spec()
    config = genesis_config(spec)
    ours = genesis_header(spec, config)
    check = check_genesis(spec, config, ours)
    assert check.header == ours and not check.misreported_root


def test_a_genesis_reported_with_the_empty_trie_root_is_accepted_and_keeps_the_real_root() -> None:
    spec = dev_genesis_spec()
    config = genesis_config(spec)
    ours = genesis_header(spec, config)
    check = check_genesis(spec, config, ours.copy(state_root=BLANK_ROOT_HASH))
    assert check.misreported_root
    assert check.header.state_root == BLANK_ROOT_HASH and check.state_root == ours.state_root


def test_another_genesis_is_refused_naming_the_differing_fields() -> None:
    spec = dev_genesis_spec()
    config = genesis_config(spec)
    theirs = genesis_header(spec, config).copy(gas_limit=1, timestamp=5)
    with pytest.raises(ChainMismatch, match="differing: timestamp, gas_limit"):
        check_genesis(spec, config, theirs)


def test_time_forks_and_the_merge_start_at_the_block_that_reaches_them() -> None:
    spec = load_genesis(SUITE / "genesis.json")
    config = genesis_config(spec)
    ttd = spec.terminal_total_difficulty
    assert ttd is not None and config.merge_block is None
    merge = config.forks[-1][0] + 2
    assert config_for_block(config, spec, ttd - 1, BlockSummary(number=merge, difficulty=1, timestamp=0)) == config
    merged = config_for_block(config, spec, ttd, BlockSummary(number=merge, difficulty=0, timestamp=0))
    assert merged.merge_block == merge
    shanghai_time = dict(spec.time_forks)["shanghai"]
    later = config_for_block(merged, spec, ttd, BlockSummary(number=merge + 3, difficulty=0, timestamp=shanghai_time))
    assert later.fork_at(merge + 2) == "paris" and later.fork_at(merge + 3) == "shanghai"
    assert config_for_block(later, spec, ttd, BlockSummary(number=merge + 4, difficulty=0, timestamp=shanghai_time + 1)) == later


def test_forks_active_from_genesis_are_not_added_again() -> None:
    spec = dev_genesis_spec()
    config = genesis_config(spec)
    assert config_for_block(config, spec, 0, BlockSummary(number=1, difficulty=0, timestamp=10**9)) == config
