"""geth's fork rules → py-evm's block-numbered fork schedule.

py-evm picks a VM by block number only, while geth activates the merge by total
difficulty and later forks by timestamp. Both are facts of the blocks, so the
schedule is computed from the genesis *and* the blocks being imported: the merge is
the first block whose parent's total difficulty reaches the terminal total
difficulty, and a time fork starts at the first block whose timestamp reaches the
fork time. Forks not yet reached by any known block are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from chain.config import FORK_NAMES, FORK_VMS, ChainConfig
from chain.errors import InvalidBlock, InvalidGenesis, UnsupportedChain
from chain.genesis import GenesisSpec

MERGE_FORK = "paris"


@dataclass(frozen=True)
class BlockSummary:
    """The three header fields that decide forks, readable before picking a VM."""

    number: int
    difficulty: int
    timestamp: int


def chain_config_for(genesis: GenesisSpec, blocks: Sequence[BlockSummary]) -> ChainConfig:
    """The ``ChainConfig`` of ``genesis`` extended by ``blocks`` (1, 2, … in order)."""
    return ChainConfig(
        chain_id=genesis.chain_id,
        forks=fork_schedule(genesis, blocks),
        terminal_total_difficulty=genesis.terminal_total_difficulty,
        dao_fork_block=genesis.dao_fork_block,
        dao_fork_support=genesis.dao_fork_support,
        blob_schedule=genesis.blob_schedule,
        fork_times=genesis.time_forks,
        fork_id_blocks=genesis.fork_id_blocks,
        deposit_contract=genesis.deposit_contract,
    )


def fork_schedule(
    genesis: GenesisSpec, blocks: Sequence[BlockSummary]
) -> tuple[tuple[int, str], ...]:
    """(first block, fork) pairs for py-evm, from geth's config and the known blocks.

    ``blocks`` must be the chain's blocks from number 1 upwards without gaps (a
    leading genesis block is tolerated): total difficulty is summed from genesis.
    """
    known = _with_genesis(genesis, blocks)
    starts: list[tuple[int, str]] = [(0, "frontier")]
    starts.extend((number, name) for name, number in genesis.block_forks)
    merge = merge_block(genesis, known)
    if merge is not None:
        starts.append((merge, MERGE_FORK))
    starts.extend(_time_fork_starts(genesis, known, merge))
    return _collapse(starts)


def merge_block(genesis: GenesisSpec, known: Sequence[BlockSummary]) -> int | None:
    """The first proof-of-stake block number, or None if not yet determined.

    Genesis itself is post-merge when its difficulty is zero and the terminal total
    difficulty is zero (geth dev-style genesis), or when its difficulty reaches the
    TTD and a time fork (Shanghai or later, proof-of-stake rules for py-evm) is active
    at genesis, as in hive's test chains. If the last known block already reaches the
    TTD, the merge is the next block, not yet known but determined.
    """
    ttd = genesis.terminal_total_difficulty
    if ttd is None:
        return None
    genesis_block = known[0]
    if genesis_block.difficulty == 0 and ttd == 0:
        return 0
    if genesis_block.difficulty >= ttd and any(
        time <= genesis_block.timestamp for _, time in genesis.time_forks
    ):
        return 0
    total = 0
    for summary in known:
        if total >= ttd and summary.number > 0:
            return summary.number
        total += summary.difficulty
    return known[-1].number + 1 if total >= ttd else None


def _time_fork_starts(
    genesis: GenesisSpec, known: Sequence[BlockSummary], merge: int | None
) -> Iterable[tuple[int, str]]:
    for name, fork_time in genesis.time_forks:
        start = next((s.number for s in known if s.timestamp >= fork_time), None)
        if start is None:
            continue
        if name not in FORK_VMS:
            raise UnsupportedChain(f"block {start} activates {name}, which ethercattle does not implement yet")
        if merge is None or start < merge:
            raise UnsupportedChain(
                f"{name} activates at block {start}, before the merge"
                f" ({'none yet' if merge is None else merge}); py-evm runs it as proof of stake"
            )
        yield start, name


def _with_genesis(genesis: GenesisSpec, blocks: Sequence[BlockSummary]) -> list[BlockSummary]:
    """Prefix the genesis summary, dropping a genesis block exported by ``geth export``."""
    header = genesis.header
    known = [BlockSummary(0, header.difficulty, header.timestamp)]
    known.extend(b for b in blocks if b.number != 0)
    for expected, summary in enumerate(known):
        if summary.number != expected:
            raise InvalidBlock(
                summary.number, None, f"blocks must run from 1 without gaps; expected {expected}"
            )
    return known


def _collapse(starts: list[tuple[int, str]]) -> tuple[tuple[int, str], ...]:
    """Sort by block, keep the newest fork per block, and refuse geth-invalid orders.

    Every proof-of-stake fork ranks above every proof-of-work fork, so this also
    refuses a proof-of-work fork scheduled after the merge.
    """
    ranked = sorted(starts, key=lambda item: (item[0], FORK_NAMES.index(item[1])))
    schedule: list[tuple[int, str]] = []
    for start, name in ranked:
        if schedule and schedule[-1][0] == start:
            schedule.pop()
        if schedule and FORK_NAMES.index(name) < FORK_NAMES.index(schedule[-1][1]):
            raise InvalidGenesis(
                f"fork {name} at block {start} comes after {schedule[-1][1]} "
                f"(block {schedule[-1][0]}): forks must activate in order"
            )
        schedule.append((start, name))
    return tuple(schedule)
