"""The canonical head of a chain database, the blocks called safe and finalized, and how far
a replica is from the master's head.

Every process reads the head the same way: the canonical head hash py-evm
stores under its schema's key, then that header. A replica's apply agent
moves the head underneath its readers, so nothing here caches; the RPC's
backend keeps its own header cache keyed by hash (a header never changes).

Where the master knows which blocks consensus calls safe and finalized (a
followed upstream reports them), it stores their hashes beside the chain
(``SETTLED_KEYS``), written through capture like any chain data, so replicas
answer those tags with them instead of the head.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth.abc import BlockHeaderAPI, DatabaseAPI
from eth.db.header import HeaderDB
from eth.db.schema import SchemaV1
from eth.exceptions import HeaderNotFound
from eth_typing import Hash32

HEAD_KEY = SchemaV1.make_canonical_head_hash_lookup_key()

SETTLED_KEYS = {"safe": b"chain:safe-block-hash", "finalized": b"chain:finalized-block-hash"}
"""Where the hashes of the blocks called safe and finalized are kept, by block tag."""


@dataclass(frozen=True)
class Head:
    """A canonical head block, as health checks, metrics and status rows report it."""

    number: int
    timestamp: int
    hash: bytes


@dataclass(frozen=True)
class SyncProgress:
    """What ``eth_syncing`` reports while a replica catches up (geth's block fields)."""

    starting_block: int
    """Head block number when this catch-up started."""
    current_block: int
    """Head block number now."""
    highest_block: int
    """The master's head, as the newest heartbeat seen on the log says."""


def head_hash(db: DatabaseAPI) -> bytes | None:
    """The canonical head's hash (None before genesis arrived)."""
    found = db.get(HEAD_KEY)
    return None if found is None else bytes(found)


def head_header(db: DatabaseAPI) -> BlockHeaderAPI | None:
    """The canonical head's header (None before genesis arrived, or while its header is still on its way)."""
    block_hash = head_hash(db)
    if block_hash is None:
        return None
    try:
        return HeaderDB(db).get_block_header_by_hash(Hash32(block_hash))  # type: ignore[arg-type]  # reads only
    except HeaderNotFound:
        return None


def read_head(db: DatabaseAPI) -> Head | None:
    header = head_header(db)
    if header is None:
        return None
    return Head(int(header.block_number), int(header.timestamp), bytes(header.hash))


def settled_hash(db: DatabaseAPI, tag: str) -> bytes | None:
    """The hash of the block last called ``tag`` ("safe" or "finalized"), None where nobody said."""
    found = db.get(SETTLED_KEYS[tag])
    return None if found is None else bytes(found)
