"""The CDC log codec: a pure, versioned, authenticated wire format.

A *record* is one atomic write of the master (an ``atomic_batch`` or a single
put/delete) with its sequence number. A Kafka *message* (an envelope) carries
either several consecutive records, one part of a record too large for one
message, or a heartbeat. Every envelope names its cluster and master and ends
with an HMAC-SHA256 under a key derived from the cluster secret and the cluster
name, so a record forged, corrupted or taken from another cluster's log fails
authentication before any of it is decoded. A message that fails it is not
part of the log (``Unauthentic``); one that passes but cannot be decoded is
the master's and is ``CorruptMessage``.

Layout of an envelope (integers big-endian)::

    b"EC" | version u8 | kind u8 | cluster (u8 len + utf-8) | master (u8 len + utf-8)
          | payload | mac (32 bytes)

Payloads:

- RECORDS: count u32, then per record: sequence u64, op count u32, then per op:
  kind u8 (0 put, 1 delete), key (u32 len + bytes), value (u32 len + bytes; puts only)
- PART: sequence u64, index u16, count u16, then a chunk of the record's encoding
- HEARTBEAT: sequence u64 (last record published before it), clock f64 (master's
  unix time), head number u64, head timestamp u64, head hash (32 bytes)
- REBASE: sequence u64 (the last record the log held before it was lost), head
  number u64, head hash (32 bytes): the first message of a log the master
  re-created after the broker lost the old one; it continues from that record

Records carry absolute puts and deletes, so applying one twice is harmless.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Iterable, Iterator

MAGIC = b"EC"
FORMAT_VERSION = 1
MAC_SIZE = 32

Operation = tuple[bytes, bytes | None]

_HEADER = struct.Struct(">2sBB")
_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")
_RECORD_HEAD = struct.Struct(">QI")
_PART_HEAD = struct.Struct(">QHH")
_HEARTBEAT = struct.Struct(">QdQQ32s")
_REBASE = struct.Struct(">QQ32s")
_PUT, _DELETE = 0, 1


class Kind(enum.IntEnum):
    RECORDS = 1
    PART = 2
    HEARTBEAT = 3
    REBASE = 4


class LogError(Exception):
    """A message of the CDC log that a replica must not apply.

    ``reason`` names the kind of refusal in logs, /readyz and metrics.
    """

    reason = "corrupt"


class Unauthentic(LogError):
    """The message does not verify under this cluster's key: it is not part of the log.

    Anyone who reaches the broker can write such a message, so it is skipped
    (and counted), never a reason to halt; only the authenticated sequence counts.
    """

    reason = "unauthentic"


class NotAnEnvelope(Unauthentic):
    """Bytes that are not a CDC envelope at all (too short, or without the magic)."""

    reason = "not-an-envelope"


class ForgedMessage(Unauthentic):
    """An envelope naming this cluster whose authenticator does not verify under its secret."""

    reason = "forged"


class ForeignCluster(Unauthentic):
    """An envelope of another cluster's log."""

    reason = "foreign-cluster"


class CorruptMessage(LogError):
    """The message authenticates but cannot be decoded: the master wrote it, so a replica halts."""


@dataclass(frozen=True)
class Record:
    """One atomic write of the master."""

    sequence: int
    operations: tuple[Operation, ...]


@dataclass(frozen=True)
class Part:
    """One chunk of a record too large for one Kafka message."""

    sequence: int
    index: int
    count: int
    chunk: bytes


@dataclass(frozen=True)
class Heartbeat:
    """The master is alive: its clock, its head, and the last sequence it published."""

    sequence: int
    clock: float
    head_number: int
    head_timestamp: int
    head_hash: bytes


@dataclass(frozen=True)
class Rebase:
    """A new log begins here: the broker lost the old one, which held the master's records up to ``sequence``.

    A replica holding at least those records continues on the new log; one
    holding fewer cannot (they are gone) and needs a snapshot.
    """

    sequence: int
    head_number: int
    head_hash: bytes


@dataclass(frozen=True)
class Envelope:
    """A decoded Kafka message of the CDC log."""

    cluster: str
    master: str
    kind: Kind
    records: tuple[Record, ...] = ()
    part: Part | None = None
    heartbeat: Heartbeat | None = None
    rebase: Rebase | None = None


@dataclass(frozen=True)
class Authenticator:
    """Signs and verifies envelopes for one cluster."""

    cluster: str
    key: bytes

    @classmethod
    def for_cluster(cls, secret: str, cluster: str) -> "Authenticator":
        """Derive a per-cluster key, so one secret shared by two clusters still keeps them apart."""
        derived = hmac.new(secret.encode(), b"ethercattle-cdc:" + cluster.encode(), hashlib.sha256).digest()
        return cls(cluster, derived)

    def sign(self, body: bytes) -> bytes:
        return body + hmac.new(self.key, body, hashlib.sha256).digest()

    def verify(self, message: bytes) -> bytes:
        """The body of an authentic message; raises ``ForgedMessage`` otherwise."""
        body, mac = message[:-MAC_SIZE], message[-MAC_SIZE:]
        if not hmac.compare_digest(mac, hmac.new(self.key, body, hashlib.sha256).digest()):
            raise ForgedMessage("authenticator does not verify: wrong ETHERCATTLE_SECRET, another cluster's record, or tampering")
        return body


def encode_record(record: Record) -> bytes:
    """One record's bytes; the master journals exactly these and packs them into envelopes."""
    chunks = [_RECORD_HEAD.pack(record.sequence, len(record.operations))]
    for key, value in record.operations:
        if value is None:
            chunks += (_U8.pack(_DELETE), _U32.pack(len(key)), key)
        else:
            chunks += (_U8.pack(_PUT), _U32.pack(len(key)), key, _U32.pack(len(value)), value)
    return b"".join(chunks)


def record_sequence(encoded: bytes) -> int:
    return _RECORD_HEAD.unpack_from(encoded)[0]


def _short_str(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 255:
        raise ValueError(f"name {value!r} is longer than 255 bytes")
    return _U8.pack(len(raw)) + raw


def _envelope(auth: Authenticator, master: str, kind: Kind, payload: bytes) -> bytes:
    head = _HEADER.pack(MAGIC, FORMAT_VERSION, kind) + _short_str(auth.cluster) + _short_str(master)
    return auth.sign(head + payload)


def envelope_overhead(auth: Authenticator, master: str) -> int:
    """Bytes an envelope adds around its payload (RECORDS count or PART head included)."""
    return len(_envelope(auth, master, Kind.PART, _PART_HEAD.pack(0, 0, 0)))


def encode_records(auth: Authenticator, master: str, encoded_records: Iterable[bytes]) -> bytes:
    """An envelope carrying consecutive records, already encoded by ``encode_record``."""
    records = list(encoded_records)
    return _envelope(auth, master, Kind.RECORDS, _U32.pack(len(records)) + b"".join(records))


def encode_parts(auth: Authenticator, master: str, encoded_record: bytes, max_message_bytes: int) -> list[bytes]:
    """Split one encoded record into PART envelopes of at most ``max_message_bytes``."""
    room = max_message_bytes - envelope_overhead(auth, master)
    if room <= 0:
        raise ValueError(f"max message size {max_message_bytes} leaves no room for a payload")
    chunks = [encoded_record[i : i + room] for i in range(0, len(encoded_record), room)]
    if len(chunks) > 0xFFFF:
        raise ValueError(f"record of {len(encoded_record)} bytes needs more than 65535 parts")
    sequence = record_sequence(encoded_record)
    return [
        _envelope(auth, master, Kind.PART, _PART_HEAD.pack(sequence, index, len(chunks)) + chunk)
        for index, chunk in enumerate(chunks)
    ]


def encode_heartbeat(auth: Authenticator, master: str, heartbeat: Heartbeat) -> bytes:
    payload = _HEARTBEAT.pack(
        heartbeat.sequence, heartbeat.clock, heartbeat.head_number, heartbeat.head_timestamp, heartbeat.head_hash
    )
    return _envelope(auth, master, Kind.HEARTBEAT, payload)


def encode_rebase(auth: Authenticator, master: str, rebase: Rebase) -> bytes:
    return _envelope(auth, master, Kind.REBASE, _REBASE.pack(rebase.sequence, rebase.head_number, rebase.head_hash))


class _Reader:
    """A bounds-checked cursor: every overrun is a ``CorruptMessage``, never an IndexError."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = memoryview(data)
        self.offset = offset

    def unpack(self, layout: struct.Struct) -> tuple:  # type: ignore[type-arg]
        if self.offset + layout.size > len(self.data):
            raise CorruptMessage("truncated payload")
        values = layout.unpack_from(self.data, self.offset)
        self.offset += layout.size
        return values

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise CorruptMessage("truncated payload")
        chunk = bytes(self.data[self.offset : self.offset + size])
        self.offset += size
        return chunk

    def short_str(self) -> str:
        (size,) = self.unpack(_U8)
        try:
            return self.take(size).decode()
        except UnicodeDecodeError as exc:
            raise CorruptMessage(f"name is not utf-8: {exc}") from None

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.offset)

    def at_end(self) -> bool:
        return self.offset == len(self.data)


def _read_record(reader: _Reader) -> Record:
    sequence, count = reader.unpack(_RECORD_HEAD)
    operations: list[Operation] = []
    for _ in range(count):
        (kind,) = reader.unpack(_U8)
        key = reader.take(reader.unpack(_U32)[0])
        if kind == _PUT:
            operations.append((key, reader.take(reader.unpack(_U32)[0])))
        elif kind == _DELETE:
            operations.append((key, None))
        else:
            raise CorruptMessage(f"record {sequence}: unknown operation kind {kind}")
    return Record(sequence, tuple(operations))


def decode_record(encoded: bytes) -> Record:
    """A record from its encoding (for reassembled parts and the master's journal)."""
    reader = _Reader(encoded)
    record = _read_record(reader)
    if not reader.at_end():
        raise CorruptMessage(f"record {record.sequence}: trailing bytes")
    return record


def _iter_records(reader: _Reader) -> Iterator[Record]:
    (count,) = reader.unpack(_U32)
    for _ in range(count):
        yield _read_record(reader)


def decode(auth: Authenticator, message: bytes) -> Envelope:
    """Verify and decode one Kafka message of the CDC log.

    The authenticator is checked before anything else is trusted. Raises
    ``Unauthentic`` (``NotAnEnvelope``, ``ForeignCluster``, ``ForgedMessage``:
    not part of the log, the caller skips it) or ``CorruptMessage`` (authentic
    but undecodable, or of a format this replica does not read: the caller halts).
    """
    if len(message) < _HEADER.size + MAC_SIZE:
        raise NotAnEnvelope(f"message of {len(message)} bytes is too short to be an envelope")
    try:
        auth.verify(message)
    except ForgedMessage:
        raise _why_unauthentic(auth, message) from None
    reader = _Reader(message[:-MAC_SIZE])
    magic, version, kind_code = reader.unpack(_HEADER)
    if magic != MAGIC:
        raise CorruptMessage(f"authentic message without the envelope's magic ({bytes(magic)!r})")
    if version != FORMAT_VERSION:
        raise CorruptMessage(f"format version {version} is not supported (this replica reads {FORMAT_VERSION}): upgrade the replica")
    cluster = reader.short_str()
    master = reader.short_str()
    try:
        kind = Kind(kind_code)
    except ValueError:
        raise CorruptMessage(f"unknown envelope kind {kind_code}") from None
    if kind is Kind.RECORDS:
        records = tuple(_iter_records(reader))
        if not reader.at_end():
            raise CorruptMessage("trailing bytes after records")
        return Envelope(cluster, master, kind, records=records)
    if kind is Kind.PART:
        sequence, index, count = reader.unpack(_PART_HEAD)
        if count == 0 or index >= count:
            raise CorruptMessage(f"record {sequence}: part {index} of {count}")
        return Envelope(cluster, master, kind, part=Part(sequence, index, count, reader.rest()))
    if kind is Kind.REBASE:
        rebase = Rebase(*reader.unpack(_REBASE))
        if not reader.at_end():
            raise CorruptMessage("trailing bytes after rebase")
        return Envelope(cluster, master, kind, rebase=rebase)
    heartbeat = Heartbeat(*reader.unpack(_HEARTBEAT))
    if not reader.at_end():
        raise CorruptMessage("trailing bytes after heartbeat")
    return Envelope(cluster, master, kind, heartbeat=heartbeat)


def _why_unauthentic(auth: Authenticator, message: bytes) -> Unauthentic:
    """Why a message that failed authentication is not this cluster's: read from its unverified header."""
    reader = _Reader(message[:-MAC_SIZE])
    try:
        magic, _, _ = reader.unpack(_HEADER)
        cluster = reader.short_str() if magic == MAGIC else None
    except CorruptMessage:
        cluster = None
    if cluster is None:
        return NotAnEnvelope(f"not a CDC envelope ({len(message)} bytes starting {message[:8].hex()})")
    if cluster != auth.cluster:
        return ForeignCluster(f"message of cluster {cluster!r} on the log of cluster {auth.cluster!r}")
    return ForgedMessage("authenticator does not verify: wrong ETHERCATTLE_SECRET, or a forgery")
