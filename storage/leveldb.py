"""py-evm's ``AtomicDatabaseAPI`` on plyvel.

py-evm 0.12 ships no LevelDB backend. This one maps ``atomic_batch`` onto one
plyvel write batch, so a py-evm batch is atomic on disk too, and offers
``write`` for callers (capture, apply) that must add their own bookkeeping keys
to the very same LevelDB batch.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, ContextManager, Iterable, Iterator

import plyvel
from eth.abc import AtomicWriteBatchAPI, DatabaseAPI
from eth.db.atomic import AtomicDBWriteBatch
from eth.db.backends.base import BaseAtomicDB
from eth.db.diff import DBDiff

# An operation of a write: (key, value) puts, (key, None) deletes.
Operation = tuple[bytes, bytes | None]


def chaindb_path(datadir: Path) -> Path:
    """Every node keeps its chain database at ``$DATADIR/chaindb``."""
    return Path(datadir) / "chaindb"


def diff_operations(diff: DBDiff) -> list[Operation]:
    """A py-evm diff as put/delete operations (one per key: the diff holds final values)."""
    return [(key, value) for key, value in diff.pending_items()] + [
        (key, None) for key in diff.deleted_keys()
    ]


@contextmanager
def batch_committed_by(db: DatabaseAPI, commit: Callable[[list[Operation]], None]) -> Iterator[AtomicWriteBatchAPI]:
    """py-evm's atomic batch over ``db``, handed to ``commit`` as operations on a clean exit.

    Every atomic database here (LevelDB, the capture wrapper, the eth_call
    overlay) shares py-evm's batch semantics and differs only in how it commits;
    an exception inside the block commits nothing.
    """
    batch = AtomicDBWriteBatch(db)
    try:
        yield batch
        operations = diff_operations(batch._diff())
    finally:
        batch._track_diff = None  # type: ignore[assignment]  # closes the batch, as py-evm does
        batch._write_target_db = None  # type: ignore[assignment]
    commit(operations)


class LevelDB(BaseAtomicDB):
    """A LevelDB database, atomic per batch."""

    MEMORY_BOUND = 8 * 2**20 + 2 * 4 * 2**20
    """What LevelDB keeps in memory with plyvel's defaults: an 8 MiB block cache, and a 4 MiB
    memtable beside the one being written out."""

    def __init__(self, path: Path, create: bool = True) -> None:
        self.path = Path(path)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = plyvel.DB(str(self.path), create_if_missing=create)

    def __getitem__(self, key: bytes) -> bytes:
        value = self.db.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        """One LevelDB read (``Mapping.get`` would go through ``__getitem__`` and a KeyError)."""
        value = self.db.get(key)
        return default if value is None else value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.db.put(key, value)

    def __delitem__(self, key: bytes) -> None:
        if self.db.get(key) is None:
            raise KeyError(key)
        self.db.delete(key)

    def _exists(self, key: bytes) -> bool:
        return self.db.get(key) is not None

    def get_raw(self, key: bytes) -> bytes | None:
        """A read that answers ``None`` for a missing key, without an exception's cost."""
        return self.db.get(key)

    def write(self, operations: Iterable[Operation]) -> None:
        """Commit operations in one LevelDB write batch: all of them or none."""
        with self.db.write_batch(transaction=True) as batch:
            for key, value in operations:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)

    def iterate(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Key/value pairs in key order, optionally under a prefix."""
        yield from self.db.iterator(prefix=prefix) if prefix else self.db.iterator()

    def iterate_from(self, start: bytes, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Key/value pairs under ``prefix`` from ``start`` on, in key order."""
        for key, value in self.db.iterator(start=start):
            if not key.startswith(prefix):
                return
            yield key, value

    def memory_usage(self) -> int:
        """Bytes LevelDB holds in memory now (its block cache and memtables), at most ``MEMORY_BOUND``."""
        return int(self.db.get_property(b"leveldb.approximate-memory-usage") or 0)

    def snapshot(self) -> "plyvel.Snapshot":
        """A consistent point-in-time view (used for snapshots while applying)."""
        return self.db.snapshot()

    def atomic_batch(self) -> ContextManager[AtomicWriteBatchAPI]:
        return batch_committed_by(self, self.write)

    def close(self) -> None:
        if not self.db.closed:
            self.db.close()

    def __enter__(self) -> "LevelDB":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
