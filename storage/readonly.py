"""A read-only view of a database: the only way the RPC reaches replica state.

A replica never writes on its own; the apply agent is the one writer. Reads go
through this view, and any write through it raises, so a bug in a read path
cannot corrupt the replica.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, NoReturn

from eth.abc import AtomicWriteBatchAPI, DatabaseAPI
from eth.db.backends.base import BaseAtomicDB


class ReadOnlyError(PermissionError):
    """A write was attempted through a read-only view."""


class ReadOnlyDB(BaseAtomicDB):
    """Reads pass through to the wrapped database; every write raises ``ReadOnlyError``."""

    def __init__(self, wrapped: DatabaseAPI) -> None:
        self.wrapped = wrapped

    def __getitem__(self, key: bytes) -> bytes:
        return self.wrapped[key]

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        """The wrapped database's own ``get``: the RPC's hottest read (the head, every lookup key)."""
        return self.wrapped.get(key, default)

    def _exists(self, key: bytes) -> bool:
        return key in self.wrapped

    def _refuse(self) -> NoReturn:
        raise ReadOnlyError("this database view is read-only: replicas never write outside the apply agent")

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._refuse()

    def __delitem__(self, key: bytes) -> None:
        self._refuse()

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        self._refuse()
        yield  # pragma: no cover - unreachable, keeps this a generator
