"""The development master: a dev chain that mines when transactions arrive or on a timer.

Transactions come in through the master's own JSON-RPC (``eth_sendRawTransaction``,
which is where emitters forward them); each waits for the block that includes it,
so a sender learns at once whether the chain took it or why not. That RPC is where
the master checks what it is sent, a blob transaction's sidecar included; the miner
gets the transaction without its sidecar, which no block carries.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from eth.abc import AtomicDatabaseAPI

from chain.config import LATEST_FORK
from chain.dev import DevMiner, init_dev_chain
from chain.errors import InvalidTransaction
from chain.transactions import split_network_form

log = logging.getLogger("ethercattle.dev")


class TransactionRejected(Exception):
    """The chain would not include the transaction; the message says why (nonce, funds, ...)."""


@dataclass
class _Submission:
    raw: bytes
    outcome: "asyncio.Future[None]"


class DevMaster:
    """Owns the dev miner, which writes to ``db`` (in the master, the node's capture wrapper)."""

    def __init__(self, db: AtomicDatabaseAPI, chain_id: int, block_time: float, fork: str = LATEST_FORK) -> None:
        init_dev_chain(db, chain_id, fork)
        self.miner = DevMiner(db)
        self.chain_id = chain_id
        self.block_time = block_time
        self._queue: list[_Submission] = []
        self._wakeup = asyncio.Event()

    def head_number(self) -> int:
        return int(self.miner.chain.get_canonical_head().block_number)

    async def submit(self, raw_transaction: bytes, tx_hash: bytes, sender: bytes) -> None:
        """Return once ``raw_transaction`` is in a block, or raise ``TransactionRejected`` with the reason.

        This is the RPC's transaction sink: the master's JSON-RPC hands ``eth_sendRawTransaction``
        here once its checks passed, and they verified a blob transaction's sidecar (cell proofs in
        the RPC's ``KzgWorker``, a child process). The miner is given the canonical form: it checks
        the transaction again for the block it builds (fork, signature, chain id, gas) without
        verifying the sidecar a second and a third time on this event loop, which also publishes
        the CDC log (30-50 ms a blob each time).
        """
        try:
            canonical, _ = split_network_form(raw_transaction)
        except InvalidTransaction as exc:
            raise TransactionRejected(exc.reason) from None
        submission = _Submission(canonical, asyncio.get_running_loop().create_future())
        self._queue.append(submission)
        self._wakeup.set()
        await submission.outcome

    async def run(self) -> None:
        """Mine whenever transactions wait, and an empty block every ``block_time`` seconds (if > 0)."""
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.block_time or None)
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(0.005)  # let submissions that arrive together share a block
            self._wakeup.clear()
            self.mine_pending()

    def mine_pending(self) -> None:
        """Mine one block of the waiting submissions; a failure rejects them, and mining goes on."""
        batch, self._queue = self._queue, []
        try:
            mined = self.miner.mine([submission.raw for submission in batch])
        except Exception as exc:  # a block that cannot be built must not stop the chain
            log.exception("could not mine a block of %d transactions; rejecting them", len(batch))
            for submission in batch:
                submission.outcome.set_exception(TransactionRejected(f"block could not be mined: {exc}"))
            return
        for submission, outcome in zip(batch, mined.outcomes):
            if outcome.included:
                submission.outcome.set_result(None)
            else:
                submission.outcome.set_exception(TransactionRejected(outcome.error or "rejected"))
        log.info(
            "mined block %d with %d transactions (%d rejected)",
            mined.block.number, len(mined.included), len(mined.skipped),
        )
