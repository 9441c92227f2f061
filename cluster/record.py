"""The CDC log codec: a pure, versioned, authenticated wire format.

A *record* is one atomic write of the master (an ``atomic_batch`` or a single
put/delete) with its sequence number. A Kafka *message* (an envelope) carries
either several consecutive records, one part of a record too large for one
message, or a heartbeat. Every envelope names its cluster and master and ends
with an HMAC-SHA256 under a key derived from the cluster secret and the cluster
name, so a record forged, corrupted or taken from another cluster's log fails
authentication before any of it is decoded.

Layout of an envelope (integers big-endian)::

    b"EC" | version u8 | kind u8 | cluster (u8 len + utf-8) | master (u8 len + utf-8)
          | payload | mac (32 bytes)

Payloads:

- RECORDS: count u32, then per record: sequence u64, op count u32, then per op:
  kind u8 (0 put, 1 delete), key (u32 len + bytes), value (u32 len + bytes; puts only)
- PART: sequence u64, index u16, count u16, then a chunk of the record's encoding
- HEARTBEAT: sequence u64 (last record published before it), clock f64 (master's
  unix time), head number u64, head timestamp u64, head hash (32 bytes)

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
_PUT, _DELETE = 0, 1


class Kind(enum.IntEnum):
    RECORDS = 1
    PART = 2
    HEARTBEAT = 3


class LogError(Exception):
    """A message of the CDC log that a replica must not apply. Never skipped.

    ``reason`` names the kind of refusal in logs, /readyz and metrics.
    """

    reason = "corrupt"


class ForgedMessage(LogError):
    """The message's authenticator does not verify under this cluster's secret."""

    reason = "forged"


class CorruptMessage(LogError):
    """The message authenticates but cannot be decoded (or is not an envelope at all)."""


class ForeignCluster(LogError):
    """The message belongs to another cluster's log."""

    reason = "foreign-cluster"


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
class Envelope:
    """A decoded Kafka message of the CDC log."""

    cluster: str
    master: str
    kind: Kind
    records: tuple[Record, ...] = ()
    part: Part | None = None
    heartbeat: Heartbeat | None = None


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

    The cluster name is read before the authenticator is checked only to say
    *why* a message is refused (another cluster's log vs. a forgery); either way
    it is refused. Raises ``ForeignCluster``, ``ForgedMessage`` or
    ``CorruptMessage``: the caller must halt, never skip.
    """
    if len(message) < _HEADER.size + MAC_SIZE:
        raise CorruptMessage(f"message of {len(message)} bytes is too short to be an envelope")
    reader = _Reader(message[:-MAC_SIZE])
    magic, version, kind_code = reader.unpack(_HEADER)
    if magic != MAGIC:
        raise CorruptMessage(f"not a CDC envelope (magic {bytes(magic)!r})")
    if version != FORMAT_VERSION:
        raise CorruptMessage(f"format version {version} is not supported (this replica reads {FORMAT_VERSION}): upgrade the replica")
    cluster = reader.short_str()
    if cluster != auth.cluster:
        raise ForeignCluster(f"message of cluster {cluster!r} on the log of cluster {auth.cluster!r}")
    auth.verify(message)
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
    heartbeat = Heartbeat(*reader.unpack(_HEARTBEAT))
    if not reader.at_end():
        raise CorruptMessage("trailing bytes after heartbeat")
    return Envelope(cluster, master, kind, heartbeat=heartbeat)
