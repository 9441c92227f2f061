"""An in-memory overlay on a (read-only) database: where eth_call writes go.

Executing a call changes state (nonces, balances, storage, trie nodes when state
overrides are persisted). On a replica the database underneath is a read-only view
and must stay untouched, so the EVM runs on this overlay: reads fall through to the
wrapped database unless the key was written or deleted here, and every write lives
in a dict that disappears with the overlay. Nothing is ever written below.
"""

from __future__ import annotations

from typing import ContextManager

from eth.abc import AtomicWriteBatchAPI, DatabaseAPI
from eth.db.backends.base import BaseAtomicDB

from storage.leveldb import batch_committed_by

_DELETED = None
"""Marks a key deleted in the overlay (it then hides the wrapped database's value)."""


class OverlayDB(BaseAtomicDB):
    """Reads from ``wrapped`` unless shadowed; writes and deletes stay in memory."""

    def __init__(self, wrapped: DatabaseAPI) -> None:
        self.wrapped = wrapped
        self._changes: dict[bytes, bytes | None] = {}

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._changes:
            value = self._changes[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        return self.wrapped[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._changes[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._changes[key] = _DELETED

    def _exists(self, key: bytes) -> bool:
        if key in self._changes:
            return self._changes[key] is not _DELETED
        return key in self.wrapped

    @property
    def pending(self) -> int:
        """How many keys the overlay shadows (a measure of what a call wrote)."""
        return len(self._changes)

    def atomic_batch(self) -> ContextManager[AtomicWriteBatchAPI]:
        """py-evm's batch semantics, committed into the overlay only."""
        return batch_committed_by(self, self._changes.update)
