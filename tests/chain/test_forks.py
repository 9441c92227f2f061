"""The fork schedule: geth block forks, the merge by total difficulty, time forks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chain.errors import UnsupportedChain
from chain.forks import BlockSummary, fork_schedule, merge_block
from chain.genesis import BLOCK_FORK_KEYS, TIME_FORK_KEYS, parse_genesis
from chain.importer import block_summary, read_raw_blocks


def test_rpc_compat_schedule_follows_genesis_and_block_timestamps(rpc_compat: Any) -> None:
    document = rpc_compat.genesis_document()
    geth = document["config"]
    summaries = [block_summary(raw) for raw in read_raw_blocks(rpc_compat.chain)]
    expected: dict[str, int] = {
        name: geth[key] for key, name in BLOCK_FORK_KEYS if key in geth
    }
    total = int(document["difficulty"], 16)
    for summary in summaries:  # merge: first block whose parent's total difficulty >= TTD
        if total >= geth["terminalTotalDifficulty"]:
            expected["paris"] = summary.number
            break
        total += summary.difficulty
    for key, name in TIME_FORK_KEYS:
        if key in geth:
            expected[name] = next(s.number for s in summaries if s.timestamp >= geth[key])

    schedule = fork_schedule(parse_genesis(document), summaries)

    assert schedule == tuple(sorted((number, name) for name, number in expected.items()))
    forkenv = json.loads((rpc_compat.root / "forkenv.json").read_text())
    assert dict((name, number) for number, name in schedule)["paris"] == int(
        forkenv["HIVE_MERGE_BLOCK_ID"]
    )
    assert schedule[-4:] == ((36, "paris"), (39, "shanghai"), (42, "cancun"), (45, "prague"))


def _spec(**config: Any) -> Any:
    return parse_genesis({"config": {"chainId": 1, **config}, "difficulty": "0x10", "alloc": {}})


def _blocks(count: int, difficulty: int = 0x10, step: int = 10) -> list[BlockSummary]:
    return [BlockSummary(n, difficulty, n * step) for n in range(1, count + 1)]


def test_time_fork_not_yet_reached_is_left_out() -> None:
    spec = _spec(londonBlock=0, terminalTotalDifficulty=0x20, shanghaiTime=30, cancunTime=1000)

    assert fork_schedule(spec, _blocks(5)) == ((0, "london"), (2, "paris"), (3, "shanghai"))


def test_merge_is_the_block_after_the_last_one_reaching_ttd() -> None:
    spec = _spec(londonBlock=0, terminalTotalDifficulty=0x30)

    # genesis 0x10 + blocks 1 and 2: block 2 reaches 0x30, so block 3 is the first PoS block.
    assert merge_block(spec, [BlockSummary(0, 0x10, 0), *_blocks(2)]) == 3


def test_genesis_is_merged_when_ttd_and_difficulty_are_zero() -> None:
    spec = parse_genesis(
        {
            "config": {"chainId": 1, "londonBlock": 0, "terminalTotalDifficulty": 0,
                       "shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0},
            "difficulty": "0x0",
            "alloc": {},
        }
    )

    assert fork_schedule(spec, []) == ((0, "prague"),)


def test_time_fork_before_the_merge_is_unsupported() -> None:
    spec = _spec(londonBlock=0, terminalTotalDifficulty=0x1000, shanghaiTime=20)

    with pytest.raises(UnsupportedChain, match="before the merge"):
        fork_schedule(spec, _blocks(5))


def test_reaching_a_fork_ethercattle_lacks_is_unsupported() -> None:
    spec = _spec(londonBlock=0, terminalTotalDifficulty=0, shanghaiTime=0, cancunTime=0,
                 pragueTime=0, osakaTime=10, amsterdamTime=30)

    with pytest.raises(UnsupportedChain, match="amsterdam"):
        fork_schedule(spec, _blocks(5))
