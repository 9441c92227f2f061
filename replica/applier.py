"""Applying the CDC log to a replica's LevelDB: in order, exactly once, or not at all.

A group of Kafka messages becomes one LevelDB write batch holding every
operation of every new record plus the replica's new position, so a crash at
any instant leaves the database equal to the master's at some sequence number.
Records at or below the applied sequence are duplicates (the master resends
what the broker did not acknowledge) and are skipped; a record past the next
sequence is a gap and halts the replica. Parts of a record too large for one
message are held in memory until the last part arrives, and the stored offset
stays before the first part until then.

A message that fails authentication is not part of the log (anyone who reaches
the broker can write one): it is skipped, logged with its offset and reason,
and counted; it never halts the replica, and never interrupts a record
arriving in parts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from cluster.record import (
    MAC_SIZE,
    Authenticator,
    CorruptMessage,
    Envelope,
    Heartbeat,
    Kind,
    LogError,
    Part,
    Record,
    Unauthentic,
    decode,
    decode_record,
)
from broker.logs import RepeatFilter
from replica.position import Position, read_position
from storage import keys
from storage.leveldb import LevelDB, Operation

log = logging.getLogger("ethercattle.apply")

# One message of the log: (Kafka offset, value).
Message = tuple[int, bytes]


class ApplyHalted(Exception):
    """The replica must stop applying: the log holds something it may not apply.

    ``reason`` is one of ``forged``, ``foreign-cluster``, ``corrupt``, ``gap``, or
    ``log-reset`` (the log no longer holds what this database applied; see ``ReplicaState``).
    """

    def __init__(self, reason: str, offset: int, detail: str) -> None:
        super().__init__(f"{reason} at offset {offset}: {detail}")
        self.reason = reason
        self.offset = offset
        self.detail = detail


REMEDIES = {
    "gap": "the log lost records the master published: restart the master (it resends what its journal holds), "
           "or restore a snapshot taken after the gap (ethercattle snapshot restore --from SNAPSHOT_DIR into an empty datadir)",
    "corrupt": "the master wrote a record this replica cannot decode: run the master's version on the replica "
               "(or newer), then restart it",
    "log-reset": "start the master if it is not running (it re-creates the topics and re-bases the cluster); a replica "
                 "that holds fewer records than the new log starts after halts with a gap: restore the newest snapshot "
                 "into an empty datadir (ethercattle snapshot restore --from SNAPSHOT_DIR)",
}
"""What an operator does about each kind of halt, said with the halt."""


def remedy(reason: str) -> str:
    return REMEDIES.get(reason, "replace this replica from the newest snapshot (ethercattle snapshot restore)")


@dataclass(frozen=True)
class Stray:
    """A message skipped because it is not part of the log."""

    offset: int
    reason: str
    detail: str


class SequenceGap(LogError):
    """A record (or a heartbeat's claim) skips sequence numbers this replica never saw."""

    reason = "gap"


@dataclass
class ApplyOutcome:
    """What one group did: for metrics, caches and subscribers."""

    records: int = 0
    duplicates: int = 0
    operations: int = 0
    bytes: int = 0
    heartbeat: Heartbeat | None = None
    strays: list[Stray] = field(default_factory=list)  # messages skipped as not part of the log
    seconds: float = 0.0  # decoding, checking and the LevelDB write of the group


@dataclass
class _Pending:
    """A record arriving in parts: its first part's offset and the chunks so far."""

    first_offset: int
    sequence: int
    count: int
    chunks: list[bytes]


class Applier:
    """The only writer of a replica's LevelDB."""

    def __init__(self, db: LevelDB, auth: Authenticator) -> None:
        self.db = db
        self.auth = auth
        self.position = read_position(db)
        self._pending: _Pending | None = None
        self._cluster_known = db.get_raw(keys.CLUSTER) is not None
        self._stray_repeats = RepeatFilter()  # a flood of strays logs one line per window, with the count

    def apply(self, messages: list[Message]) -> ApplyOutcome:
        """Apply a group of consecutive messages in one LevelDB write.

        On a message that may not be applied, the messages before it are
        written (the database stays a prefix of the master's) and
        ``ApplyHalted`` is raised: nothing after it is ever applied.
        """
        started = time.perf_counter()
        outcome = ApplyOutcome()
        operations: list[Operation] = []
        position = self.position
        offset = position.next_offset
        try:
            for offset, value in messages:
                if offset < position.next_offset and self._pending is None:
                    continue
                position = self._apply_message(offset, value, position, operations, outcome)
        except LogError as error:
            self._write(operations, position)
            raise ApplyHalted(error.reason, offset, str(error)) from error
        self._write(operations, position)
        outcome.operations = len(operations)
        outcome.seconds = time.perf_counter() - started
        return outcome

    def _apply_message(
        self, offset: int, value: bytes, position: Position, operations: list[Operation], outcome: ApplyOutcome
    ) -> Position:
        try:
            envelope = decode(self.auth, value)
        except Unauthentic as stray:
            self._skip(Stray(offset, stray.reason, str(stray)), outcome)
            if self._pending is not None:  # the stored offset stays before the record's first part
                return position
            return Position(position.sequence, offset + 1, value[-MAC_SIZE:])
        sequence = position.sequence
        if envelope.kind is Kind.PART:
            assert envelope.part is not None
            record = self._collect_part(offset, envelope.part, sequence)
            if record is None:
                return position
            sequence = self._take(record, sequence, operations, outcome, len(value))
        else:
            if self._pending is not None:
                log.warning(
                    "record %d arrived in %d of %d parts before offset %d: the master restarted mid-record; it resends the whole record",
                    self._pending.sequence, len(self._pending.chunks), self._pending.count, offset,
                )
                self._pending = None
            sequence = self._apply_envelope(envelope, sequence, operations, outcome, len(value))
        return Position(sequence, offset + 1, value[-MAC_SIZE:])

    def _skip(self, stray: Stray, outcome: ApplyOutcome) -> None:
        outcome.strays.append(stray)
        line = log.makeRecord(
            log.name, logging.WARNING, __file__, 0,
            "skipped the message at offset %d: %s (%s); it is not part of the log, applying continues",
            (stray.offset, stray.reason, stray.detail), None,
        )
        if log.isEnabledFor(logging.WARNING) and self._stray_repeats.filter(line):
            log.handle(line)

    def _apply_envelope(
        self, envelope: Envelope, sequence: int, operations: list[Operation], outcome: ApplyOutcome, size: int
    ) -> int:
        if envelope.kind is Kind.HEARTBEAT:
            assert envelope.heartbeat is not None
            if envelope.heartbeat.sequence > sequence:
                raise SequenceGap(
                    f"heartbeat says the master published up to record {envelope.heartbeat.sequence}, "
                    f"but the log held records only up to {sequence} before it"
                )
            outcome.heartbeat = envelope.heartbeat
            return sequence
        if envelope.kind is Kind.REBASE:
            assert envelope.rebase is not None
            if envelope.rebase.sequence > sequence:
                raise SequenceGap(
                    f"the master re-based the cluster on a new log after record {envelope.rebase.sequence} "
                    f"(block {envelope.rebase.head_number}), but this replica holds records only up to {sequence}: "
                    f"the records between are gone with the old log. Restore a snapshot taken since the re-base (from a "
                    f"replica that continued: ethercattle snapshot create --url http://REPLICA:PORT --out PATH)"
                )
            log.info("the log was re-based after record %d; this replica (record %d) continues on it",
                     envelope.rebase.sequence, sequence)
            return sequence
        for record in envelope.records:
            sequence = self._take(record, sequence, operations, outcome, size // max(len(envelope.records), 1))
        return sequence

    def _take(self, record: Record, sequence: int, operations: list[Operation], outcome: ApplyOutcome, size: int) -> int:
        """Add one record's operations if it is the next one; skip a duplicate; refuse a gap."""
        if record.sequence <= sequence:
            outcome.duplicates += 1
            return sequence
        if record.sequence != sequence + 1:
            raise SequenceGap(f"expected record {sequence + 1}, got record {record.sequence}")
        for key, _ in record.operations:
            if keys.is_bookkeeping(key):
                raise CorruptMessage(f"record {record.sequence} writes the reserved key {key!r}")
        operations.extend(record.operations)
        outcome.records += 1
        outcome.bytes += size
        return record.sequence

    def _collect_part(self, offset: int, part: Part, sequence: int) -> Record | None:
        """Buffer a part; the whole record once its last part is in."""
        if part.index == 0:
            if self._pending is not None:
                log.warning("record %d restarted from its first part at offset %d", part.sequence, offset)
            self._pending = _Pending(offset, part.sequence, part.count, [part.chunk])
        else:
            pending = self._pending
            if pending is None or pending.sequence != part.sequence or pending.count != part.count or len(pending.chunks) != part.index:
                raise CorruptMessage(f"part {part.index}/{part.count} of record {part.sequence} out of order")
            pending.chunks.append(part.chunk)
        pending = self._pending
        assert pending is not None
        if len(pending.chunks) < pending.count:
            return None
        self._pending = None
        return decode_record(b"".join(pending.chunks))

    def rebase(self, position: Position) -> None:
        """Continue on a new log from ``position`` (its sequence is the one applied; see ``replica.rebase``)."""
        self._pending = None
        self._write([], position)

    def _write(self, operations: list[Operation], position: Position) -> None:
        if position == self.position:
            return
        bookkeeping = position.operations()
        if not self._cluster_known:
            bookkeeping.append((keys.CLUSTER, self.auth.cluster.encode()))
            self._cluster_known = True
        self.db.write([*operations, *bookkeeping])
        self.position = position
