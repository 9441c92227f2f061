"""The replication bookkeeping key schema.

Every key this project writes for its own bookkeeping starts with ``ethercattle:``
and lives beside the chain data in the same LevelDB, so that one write batch can
commit chain data and bookkeeping together. No chain key starts with that prefix,
which is what lets tests compare a master and a replica "outside ethercattle: keys".
"""

from __future__ import annotations

PREFIX = b"ethercattle:"

# Master: the sequence number of the last record committed.
MASTER_SEQUENCE = PREFIX + b"master:sequence"
# Master: records committed but not yet acknowledged by the broker, keyed by sequence.
JOURNAL_PREFIX = PREFIX + b"journal:"

# Replica: the last applied sequence number and the Kafka offset of the next message.
APPLIED_SEQUENCE = PREFIX + b"replica:sequence"
NEXT_OFFSET = PREFIX + b"replica:next-offset"
# Replica: the authenticator of the last applied message, to recognise the log on resume.
LAST_MESSAGE_MAC = PREFIX + b"replica:last-message-mac"
# Replica: the cluster whose log this database follows (set on first apply).
CLUSTER = PREFIX + b"cluster"


def journal_key(sequence: int) -> bytes:
    """Big-endian so that LevelDB's byte order is sequence order."""
    return JOURNAL_PREFIX + sequence.to_bytes(8, "big")


def journal_sequence(key: bytes) -> int:
    return int.from_bytes(key[len(JOURNAL_PREFIX):], "big")


def encode_int(value: int) -> bytes:
    return value.to_bytes(8, "big")


def decode_int(raw: bytes | None, default: int = 0) -> int:
    return default if raw is None else int.from_bytes(raw, "big")


def is_bookkeeping(key: bytes) -> bool:
    return key.startswith(PREFIX)
