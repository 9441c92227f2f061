"""Chain logic of following: block 0 against the upstream's, forks activated as blocks arrive and rolled back by reorgs."""

from __future__ import annotations

import pytest
from eth.constants import BLANK_ROOT_HASH

from chain.config import ChainConfig, read_config
from chain.dev import dev_genesis_spec
from chain.errors import ChainMismatch
from chain.forks import BlockSummary
from chain.genesis import GenesisSpec, load_genesis
from chain.live import check_genesis, config_for_block, config_rewound_to, genesis_config, genesis_header
from tests.chain.conftest import Imported
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


MERGE_BLOCK = 36
"""The rpc-compat chain's first proof-of-stake block; its block forks end at 33 (Gray Glacier)."""

SHANGHAI_BLOCK = 39
"""The rpc-compat chain's first Shanghai block (time 390); Cancun starts at 42, Prague at 45, its head."""


@pytest.fixture
def compat_schedule(imported: Imported) -> tuple[GenesisSpec, ChainConfig]:
    """The rpc-compat genesis and the schedule its 45 blocks built: block forks to 33, the merge, three time forks."""
    config = read_config(imported.db)
    assert config.fork_at(SHANGHAI_BLOCK - 1) == "paris" and config.fork_at(SHANGHAI_BLOCK) == "shanghai"
    return load_genesis(SUITE / "genesis.json"), config


def test_a_rewind_below_a_time_fork_activation_takes_it_and_later_ones_out(compat_schedule: tuple[GenesisSpec, ChainConfig]) -> None:
    spec, config = compat_schedule
    rewound = config_rewound_to(config, spec, SHANGHAI_BLOCK - 1)
    assert rewound.forks == (*genesis_config(spec).forks, (MERGE_BLOCK, "paris"))
    assert rewound.fork_at(45) == "paris"


def test_a_rewind_to_the_activating_block_or_above_keeps_it(compat_schedule: tuple[GenesisSpec, ChainConfig]) -> None:
    spec, config = compat_schedule
    up_to_shanghai = config.forks[:config.forks.index((SHANGHAI_BLOCK, "shanghai")) + 1]
    for fork_number in (SHANGHAI_BLOCK, SHANGHAI_BLOCK + 2):
        assert config_rewound_to(config, spec, fork_number).forks == up_to_shanghai
    assert config_rewound_to(config, spec, 45) == config


def test_a_rewind_below_the_merge_keeps_the_genesis_block_forks_even_above_the_fork_point(compat_schedule: tuple[GenesisSpec, ChainConfig]) -> None:
    spec, config = compat_schedule
    rewound = config_rewound_to(config, spec, 31)
    assert rewound.forks == genesis_config(spec).forks
    assert rewound.fork_at(33) == "gray-glacier" and rewound.merge_block is None


def next_block_after_rewind(compat_schedule: tuple[GenesisSpec, ChainConfig], number: int, after_shanghai: int) -> ChainConfig:
    """The schedule after a rewind to just below Shanghai's first block, extended by a post-merge block
    ``number`` whose time is ``after_shanghai`` seconds from Shanghai's."""
    spec, config = compat_schedule
    rewound = config_rewound_to(config, spec, SHANGHAI_BLOCK - 1)
    ttd = spec.terminal_total_difficulty
    assert ttd is not None
    timestamp = dict(spec.time_forks)["shanghai"] + after_shanghai
    return config_for_block(rewound, spec, ttd, BlockSummary(number=number, difficulty=0, timestamp=timestamp))


def test_after_a_rewind_a_block_before_the_fork_time_runs_the_older_fork(compat_schedule: tuple[GenesisSpec, ChainConfig]) -> None:
    extended = next_block_after_rewind(compat_schedule, SHANGHAI_BLOCK, -1)
    assert extended.fork_at(SHANGHAI_BLOCK) == "paris"


def test_after_a_rewind_a_block_at_the_fork_time_activates_it_at_its_own_height(compat_schedule: tuple[GenesisSpec, ChainConfig]) -> None:
    later = SHANGHAI_BLOCK + 1
    extended = next_block_after_rewind(compat_schedule, later, 0)
    assert extended.forks[-1] == (later, "shanghai")
    assert extended.fork_at(SHANGHAI_BLOCK) == "paris"


def test_after_a_rewind_below_the_merge_it_comes_where_the_new_branch_reaches_the_ttd(compat_schedule: tuple[GenesisSpec, ChainConfig]) -> None:
    spec, config = compat_schedule
    assert config.merge_block == MERGE_BLOCK
    ttd = spec.terminal_total_difficulty
    assert ttd is not None
    rewound = config_rewound_to(config, spec, MERGE_BLOCK - 1)
    assert config_for_block(rewound, spec, ttd - 1, BlockSummary(number=MERGE_BLOCK, difficulty=1, timestamp=360)) == rewound
    merged = config_for_block(rewound, spec, ttd, BlockSummary(number=MERGE_BLOCK + 1, difficulty=0, timestamp=370))
    assert merged.merge_block == MERGE_BLOCK + 1 and merged.fork_at(MERGE_BLOCK) == "gray-glacier"
