"""The journal: where the publisher resumes, read while the chain commits on another thread."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from master import journal
from master.capture import CaptureDB
from storage.leveldb import LevelDB


class CommitsAfterFirstRead(LevelDB):
    """A LevelDB where a record is committed right after the first read of the journal or the sequence,
    as an import thread does while the publisher starts."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.committed = True  # not while the capture reads its starting sequence
        self.capture = CaptureDB(self)
        self.committed = False

    def _after_read(self) -> None:
        if not self.committed:
            self.committed = True
            self.capture[b"\x01" * 32] = b"state"

    def get_raw(self, key: bytes) -> bytes | None:
        value = super().get_raw(key)
        self._after_read()
        return value

    def iterate_from(self, start: bytes, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        items = list(super().iterate_from(start, prefix))
        self._after_read()
        yield from items


def test_a_record_committed_while_the_position_is_read_counts_as_unacknowledged(tmp_path: Path) -> None:
    db = CommitsAfterFirstRead(tmp_path / "db")

    assert journal.last_acknowledged(db) == 0
    assert [sequence for sequence, _ in journal.pending(db)] == [1]


def test_the_position_is_the_sequence_before_the_first_journaled_record(tmp_path: Path) -> None:
    db = LevelDB(tmp_path / "db")
    capture = CaptureDB(db)
    for n in range(3):
        capture[bytes([n]) * 32] = b"state"
    journal.acknowledge(db, [1])

    assert journal.last_acknowledged(db) == 1
    journal.acknowledge(db, [2, 3])
    assert journal.last_acknowledged(db) == 3
