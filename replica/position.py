"""Where a replica stands in the log, as stored in its own LevelDB beside the data."""

from __future__ import annotations

from dataclasses import dataclass

from storage import keys
from storage.leveldb import LevelDB, Operation


@dataclass(frozen=True)
class Position:
    """The last applied sequence number and the offset of the next message to read.

    ``last_message_mac`` fingerprints the message at ``next_offset - 1``: on
    resume, the log must still hold that very message there, or it is not the
    log this database was built from.
    """

    sequence: int = 0
    next_offset: int = 0
    last_message_mac: bytes = b""

    def operations(self) -> list[Operation]:
        """The bookkeeping writes that go into the same LevelDB batch as the data."""
        return [
            (keys.APPLIED_SEQUENCE, keys.encode_int(self.sequence)),
            (keys.NEXT_OFFSET, keys.encode_int(self.next_offset)),
            (keys.LAST_MESSAGE_MAC, self.last_message_mac),
        ]


def read_position(db: LevelDB) -> Position:
    return Position(
        sequence=keys.decode_int(db.get_raw(keys.APPLIED_SEQUENCE)),
        next_offset=keys.decode_int(db.get_raw(keys.NEXT_OFFSET)),
        last_message_mac=db.get_raw(keys.LAST_MESSAGE_MAC) or b"",
    )
