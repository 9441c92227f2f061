"""Change data capture: a py-evm database whose every committed write becomes one log record.

The wrapper has one job. A clean ``atomic_batch`` exit becomes exactly one
record, an exception publishes nothing, and a bare put/delete becomes one
record. The record is journaled in the same LevelDB batch as the write and the
chain never waits for the broker: ``on_commit`` only tells the publisher that
there is something new.
"""

from __future__ import annotations

import threading
from typing import Callable, ContextManager

from eth.abc import AtomicWriteBatchAPI
from eth.db.backends.base import BaseAtomicDB

from master import journal
from cluster.record import Operation, Record, encode_record
from storage import keys
from storage.leveldb import LevelDB, batch_committed_by

CommitListener = Callable[[int], None]


class CaptureDB(BaseAtomicDB):
    """Wraps the master's LevelDB; reads pass through, writes are captured."""

    def __init__(self, db: LevelDB, on_commit: CommitListener | None = None) -> None:
        self.db = db
        self.on_commit = on_commit
        self.sequence = journal.last_sequence(db)
        self._lock = threading.Lock()

    def __getitem__(self, key: bytes) -> bytes:
        return self.db[key]

    def _exists(self, key: bytes) -> bool:
        return key in self.db

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._commit([(key, value)])

    def __delitem__(self, key: bytes) -> None:
        if key not in self.db:
            raise KeyError(key)
        self._commit([(key, None)])

    def atomic_batch(self) -> ContextManager[AtomicWriteBatchAPI]:
        return batch_committed_by(self.db, self._commit)

    def _commit(self, operations: list[Operation]) -> None:
        """Write the operations, the record and the new sequence in one LevelDB batch.

        An empty batch wrote nothing, so it becomes no record.
        """
        if not operations:
            return
        for key, _ in operations:
            if keys.is_bookkeeping(key):
                raise ValueError(f"chain writes may not use the reserved prefix {keys.PREFIX!r}: {key!r}")
        with self._lock:
            sequence = self.sequence + 1
            encoded = encode_record(Record(sequence, tuple(operations)))
            self.db.write(
                [*operations, (keys.journal_key(sequence), encoded), (keys.MASTER_SEQUENCE, keys.encode_int(sequence))]
            )
            self.sequence = sequence
        if self.on_commit is not None:
            self.on_commit(sequence)
