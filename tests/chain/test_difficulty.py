"""Total difficulty recovered from py-evm's score."""

from __future__ import annotations

from typing import Any

from eth_typing import BlockNumber

from chain.config import open_chain
from chain.difficulty import total_difficulty
from chain.importer import block_summary, read_raw_blocks


def test_total_difficulty_sums_work_and_freezes_at_the_merge(imported: Any, rpc_compat: Any) -> None:
    chain = open_chain(imported.db)
    config = imported.result.config
    genesis_difficulty = int(rpc_compat.genesis_document()["difficulty"], 16)
    summaries = [block_summary(raw) for raw in read_raw_blocks(rpc_compat.chain)]
    pow_total = genesis_difficulty + sum(s.difficulty for s in summaries if s.number < 36)

    def td(number: int) -> int:
        header = chain.get_canonical_block_header_by_number(BlockNumber(number))
        return total_difficulty(imported.db, config, header)

    assert td(0) == genesis_difficulty
    assert td(35) == pow_total >= config.terminal_total_difficulty
    assert td(34) < config.terminal_total_difficulty
    assert td(36) == td(45) == pow_total
