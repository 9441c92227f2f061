"""The master's journal of records committed but not yet acknowledged by the broker.

A record enters the journal in the same LevelDB write batch as the chain data it
describes, so no committed write can be missing from the log: whatever the
broker has not acknowledged is still here after a crash, and is sent again.
"""

from __future__ import annotations

from typing import Iterator

from storage import keys
from storage.leveldb import LevelDB


def pending(db: LevelDB, after: int = 0) -> Iterator[tuple[int, bytes]]:
    """Journaled records in sequence order, ``(sequence, encoded record)``, past ``after``."""
    for key, value in db.iterate_from(keys.journal_key(after + 1), keys.JOURNAL_PREFIX):
        yield keys.journal_sequence(key), value


def acknowledge(db: LevelDB, sequences: list[int]) -> None:
    """Forget records the broker has acknowledged (bookkeeping only: never captured)."""
    db.write((keys.journal_key(sequence), None) for sequence in sequences)


def last_sequence(db: LevelDB) -> int:
    return keys.decode_int(db.get_raw(keys.MASTER_SEQUENCE))


def last_acknowledged(db: LevelDB) -> int:
    """The sequence before the first journaled record: every record up to it is on the log.

    Safe while another thread commits: the last sequence is read before the journal, so a
    record committed between the two reads is seen as pending. Read the other way round, an
    empty journal followed by a record's commit counted that record as acknowledged (and on
    an empty log, the publisher then re-based the cluster past it).
    """
    last = last_sequence(db)
    first_pending = next(pending(db), None)
    return last if first_pending is None else first_pending[0] - 1
