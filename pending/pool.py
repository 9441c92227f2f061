"""The cluster's pending transactions, as this replica knows them.

Every replica reads the whole transaction topic (``pending.reader``), so every
replica knows what any replica accepted: ``eth_getTransactionCount(addr,
"pending")``, ``eth_getTransactionByHash`` and the ``txpool`` namespace answer
the same on all of them. A transaction leaves the view when a block this
replica applied includes it (or another transaction took its nonce), when an
emitter dead-letters it, or ``PENDING_TTL`` seconds after it was sent.

``PendingPool`` is plain data with a lock (the RPC may read it from worker
threads); it implements the RPC's ``PendingView`` protocol by shape, without
importing the RPC.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from eth.abc import SignedTransactionAPI

from chain.transactions import split_network_form
from replica.catchup import SharedView

Decoder = Callable[[bytes], SignedTransactionAPI]
"""A canonical (sidecar-free) raw transaction to py-evm's transaction, under the chain's current rules."""


@dataclass(frozen=True)
class PendingTransaction:
    """One transaction sent to the cluster and not (yet) seen in a block."""

    tx_hash: bytes
    sender: bytes
    """Recovered from the signature (never taken from the record's key)."""
    nonce: int
    raw: bytes
    """As the client sent it: a blob transaction keeps its sidecar (network form)."""
    transaction: SignedTransactionAPI
    received_at: float
    """Unix time the transaction was put on the topic (the record's timestamp)."""


def parse(raw: bytes, received_at: float, decode: Decoder, sender: bytes | None = None) -> PendingTransaction:
    """A raw transaction off the topic to a pending entry; ``sender`` is recovered unless given.

    Raises whatever the decoder raises for a transaction that does not decode.
    """
    canonical, _ = split_network_form(raw)
    transaction = decode(canonical)
    return PendingTransaction(
        tx_hash=bytes(transaction.hash),
        sender=bytes(transaction.sender) if sender is None else sender,
        nonce=int(transaction.nonce),
        raw=raw,
        transaction=transaction,
        received_at=received_at,
    )


class PendingPool(SharedView):
    """Pending transactions by hash and by (sender, nonce); several may share a nonce (replacements).

    Arguments:
        ttl: seconds an entry lives when no block includes it.
        clock: the time source (tests pass their own).
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._by_hash: dict[bytes, PendingTransaction] = {}
        self._by_sender: dict[bytes, dict[int, set[bytes]]] = {}
        self._dropped: dict[bytes, float] = {}
        """Hashes taken out for good (dead-lettered), with when: a late copy of the record is not re-added."""

    # -- writes (the reader, the sink, the pruner) ----------------------------------------

    def add(self, entry: PendingTransaction) -> bool:
        """Add an entry; False when it is already there, was dropped, or has expired."""
        with self._lock:
            if entry.tx_hash in self._by_hash or entry.tx_hash in self._dropped:
                return False
            if entry.received_at + self.ttl <= self.clock():
                return False
            self._by_hash[entry.tx_hash] = entry
            self._by_sender.setdefault(entry.sender, {}).setdefault(entry.nonce, set()).add(entry.tx_hash)
            return True

    def discard(self, tx_hash: bytes) -> PendingTransaction | None:
        """Take an entry out (it was mined or replaced); returns it if it was there."""
        with self._lock:
            return self._discard(tx_hash)

    def drop(self, tx_hash: bytes) -> PendingTransaction | None:
        """Take an entry out for good (an emitter dead-lettered it): it will not be re-added."""
        with self._lock:
            self._dropped[tx_hash] = self.clock()
            return self._discard(tx_hash)

    def _discard(self, tx_hash: bytes) -> PendingTransaction | None:
        entry = self._by_hash.pop(tx_hash, None)
        if entry is None:
            return None
        nonces = self._by_sender[entry.sender]
        hashes = nonces[entry.nonce]
        hashes.discard(tx_hash)
        if not hashes:
            del nonces[entry.nonce]
        if not nonces:
            del self._by_sender[entry.sender]
        return entry

    def expire(self) -> int:
        """Remove entries older than the TTL (and forget old drops); returns how many entries left."""
        now = self.clock()
        with self._lock:
            old = [h for h, entry in self._by_hash.items() if entry.received_at + self.ttl <= now]
            for tx_hash in old:
                self._discard(tx_hash)
            for tx_hash in [h for h, at in self._dropped.items() if at + self.ttl <= now]:
                del self._dropped[tx_hash]
            return len(old)

    def prune(self, included: Callable[[bytes], bool], nonce_of: Callable[[bytes], int]) -> int:
        """Remove what the replica's chain settled: included transactions, and nonces already used.

        ``included(hash)`` says whether a block holds the transaction; ``nonce_of(sender)``
        is the sender's account nonce at the head. Returns how many entries left.
        """
        with self._lock:
            senders = {sender: dict(nonces) for sender, nonces in self._by_sender.items()}
        gone: list[bytes] = []
        for sender, nonces in senders.items():
            state_nonce = nonce_of(sender)
            for nonce, hashes in nonces.items():
                gone.extend(hashes if nonce < state_nonce else [h for h in hashes if included(h)])
        with self._lock:
            return sum(self._discard(tx_hash) is not None for tx_hash in gone)

    # -- reads (the RPC's PendingView) ----------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_hash)

    def known(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def entry(self, tx_hash: bytes) -> PendingTransaction | None:
        return self._by_hash.get(tx_hash)

    def get(self, tx_hash: bytes) -> tuple[SignedTransactionAPI, bytes] | None:
        """The pending transaction and its sender, or None."""
        entry = self._by_hash.get(tx_hash)
        return None if entry is None else (entry.transaction, entry.sender)

    def next_nonce(self, sender: bytes, state_nonce: int) -> int:
        """The sender's next nonce: ``state_nonce`` moved past pending nonces that follow it without a gap."""
        with self._lock:
            nonces = self._by_sender.get(sender, {})
            nonce = state_nonce
            while nonce in nonces:
                nonce += 1
            return nonce

    def entries(self) -> list[PendingTransaction]:
        """Every entry, by sender then nonce (replacements by arrival)."""
        with self._lock:
            entries = list(self._by_hash.values())
        return sorted(entries, key=lambda e: (e.sender, e.nonce, e.received_at))

    def transactions(self) -> list[tuple[SignedTransactionAPI, bytes]]:
        """Every pending transaction with its sender, by sender then nonce."""
        return [(entry.transaction, entry.sender) for entry in self.entries()]

    def senders(self) -> Iterable[bytes]:
        with self._lock:
            return list(self._by_sender)

