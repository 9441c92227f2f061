"""Transactions a reorg took out of the canonical chain, for the pending view to hold again.

The master carries a reorg as ordinary records (canonical mapping, head, lookups
rewritten); the dropped blocks stay in the database, stored by hash. Each replica
derives the same thing from them: after the head moves, if the head it saw last
left the canonical chain, the transactions of the blocks that left it (and that the
new chain does not hold, nor made stale by using their nonce) are pending again,
until a block includes them or ``PENDING_TTL`` passes. The upstream node takes them
back into its own pool, so they usually come back in a block of the new branch.
"""

from __future__ import annotations

import time
from typing import Callable

from eth.abc import BlockHeaderAPI
from eth.chains.base import Chain
from eth.exceptions import HeaderNotFound
from eth_typing import BlockNumber

from chain.head import head_hash
from pending.chainview import ChainView
from pending.pool import PendingTransaction

MAX_DEPTH = 128
"""Blocks walked back from the last head seen; a deeper reorg is not recovered into the view."""


class ReorgWatch:
    """Remembers the head this replica saw last; ``dropped`` returns what a reorg took out since."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.last_head: bytes | None = None

    def dropped(self, view: ChainView) -> list[PendingTransaction]:
        """The transactions of the blocks that left the canonical chain since the last call."""
        head = head_hash(view.db)
        chain = view.chain
        if head is None or chain is None or head == self.last_head:
            return []
        last, self.last_head = self.last_head, head
        if last is None:
            return []
        left: list[BlockHeaderAPI] = []
        cursor: bytes = last
        while len(left) < MAX_DEPTH:
            try:
                header = chain.get_block_header_by_hash(cursor)  # type: ignore[arg-type]
            except HeaderNotFound:
                return []
            if _canonical_hash(chain, header.block_number) == header.hash:
                break
            left.append(header)
            cursor = header.parent_hash
        now = self.clock()
        entries = []
        for header in reversed(left):
            for tx in chain.get_block_by_header(header).transactions:
                if view.included(tx.hash) or tx.nonce < view.nonce(tx.sender):
                    continue
                entries.append(PendingTransaction(bytes(tx.hash), bytes(tx.sender), int(tx.nonce), tx.encode(), tx, now))
        return entries


def _canonical_hash(chain: Chain, number: int) -> bytes | None:
    try:
        return chain.chaindb.get_canonical_block_hash(BlockNumber(number))
    except HeaderNotFound:
        return None
