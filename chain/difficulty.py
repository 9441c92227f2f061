"""Total difficulty from py-evm's stored score.

py-evm stores a "score" per block that equals total difficulty only before the
merge: for a block with zero difficulty it adds the block *number* instead (so that
fork choice keeps preferring longer chains). Total difficulty stops growing at the
merge, so it is the score minus the block numbers added since the merge block. That
needs only the block's own score, so it works on any branch and costs one read.
"""

from __future__ import annotations

from eth.abc import AtomicDatabaseAPI, BlockHeaderAPI
from eth.db.header import HeaderDB

from chain.config import ChainConfig


def total_difficulty(
    db: AtomicDatabaseAPI, config: ChainConfig, header: BlockHeaderAPI
) -> int:
    """geth's total difficulty of ``header`` (constant from the merge block on)."""
    score = HeaderDB(db).get_score(header.hash)
    merge = config.merge_block
    if merge is None or header.block_number < merge:
        return score
    return score - _sum_of_numbers(merge, header.block_number)


def _sum_of_numbers(first: int, last: int) -> int:
    """first + (first + 1) + … + last."""
    return (last * (last + 1) - (first - 1) * first) // 2
