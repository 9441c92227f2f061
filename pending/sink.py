"""eth_sendRawTransaction's sink on a replica: the cluster's transaction topic.

A transaction the RPC accepted goes onto the topic keyed by its sender, so one
sender's transactions land in one partition, in the order they were sent; the
client gets its hash once the broker acknowledged the record. The record's
value is the raw transaction exactly as the client sent it (a blob transaction
keeps its sidecar, which the emitters' targets need).

A transaction already pending in the cluster (this replica read it off the
topic, or produced it) is answered with its hash again and produces no second
record; one this replica is producing right now is never handed over twice (the
RPC joins a resend to the first send, ``rpc.inflight``). Two replicas that
receive the same new transaction at the same instant may both produce it; the
emitters' table of forwarded hashes sends it once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from pending.pool import Decoder, PendingPool, parse

log = logging.getLogger("ethercattle.txsink")

Produce = Callable[[bytes, bytes], Awaitable[None]]
"""``produce(key, value)``: put one record on the transaction topic and wait for the broker's acknowledgement."""


class SubmissionFailed(Exception):
    """The transaction could not be put on the topic (the broker is unreachable); the client may retry."""


class TopicSink:
    """The replica's ``TransactionSink``: the transaction topic, keyed by sender.

    Arguments:
        produce: writes one record and returns once the broker acknowledged it.
        pending: the replica's pending view (consulted for "already known", fed on success).
        decode: decodes a canonical raw transaction under the chain's current rules.
        timeout: seconds to wait for the broker before answering the client with an error.
    """

    def __init__(self, produce: Produce, pending: PendingPool, decode: Decoder, timeout: float = 10.0) -> None:
        self._produce = produce
        self.pending = pending
        self._decode = decode
        self.timeout = timeout
        self.produced = 0
        self.already_known = 0

    async def submit(self, raw_transaction: bytes, tx_hash: bytes, sender: bytes) -> None:
        if self.pending.known(tx_hash):
            self.already_known += 1
            return
        try:
            await asyncio.wait_for(self._produce(sender, raw_transaction), self.timeout)
        except Exception as exc:
            timed_out = isinstance(exc, asyncio.TimeoutError)
            reason = f"no acknowledgement within {self.timeout:g}s" if timed_out else str(exc) or type(exc).__name__
            log.warning("could not produce transaction 0x%s: %r", tx_hash.hex(), exc)
            raise SubmissionFailed(f"transaction not accepted: the cluster's transaction log is unavailable ({reason}); "
                                   "retry shortly") from None
        self.produced += 1
        try:  # this replica's view has it at once; the others when they read the record
            self.pending.add(parse(raw_transaction, time.time(), self._decode, sender))
        except Exception:  # noqa: BLE001 - the RPC decoded it already; the topic's copy will be read anyway
            log.debug("transaction 0x%s not added to the local pending view", tx_hash.hex(), exc_info=True)

