"""The cluster's JSON-RPC filters, as this replica knows them.

Filter state lives on Kafka, not in one process: a compacted topic
(``TopicNames.filters``, one partition) holds, keyed by filter id, the latest
definition and cursor of each filter as JSON; a tombstone (empty value) removes
it. Every replica reads the whole topic without a group (``filters.reader``)
into this store, so a filter installed through one replica is polled through
any other and outlives the replica that installed it.

A write (install, a poll's new cursor, uninstall, expiry) is published and
acknowledged by the broker before the RPC answers, then applied to the local
view at once; the reader applies the same record again when it comes round
(same content: harmless). Before reading a filter, a call waits on ``sync()``:
the reader's barrier returns once every record the topic held when the call
arrived is in the view, so a poll on replica B that follows an answered poll on
replica A sees A's cursor.

The store also keeps a short index of the transaction topic (offset and hash
per partition) for ``eth_newPendingTransactionFilter``, whose cursor is a
position in that topic.

The store is plain data with asyncio locks; what a filter's JSON holds is the
RPC's business (``filters.methods``), except ``touched``: the Unix time of its last
install or poll, which expiry reads.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import time
from typing import Any, AsyncIterator, Awaitable, Callable

from cluster import boundedjson
from replica.catchup import SharedView

FilterJSON = dict[str, Any]
Publisher = Callable[[str, "FilterJSON | None"], Awaitable[None]]
"""Publishes one filter's new JSON (None: a tombstone) and returns once the broker acknowledged it."""


class FilterStoreUnavailable(RuntimeError):
    """The store cannot publish yet (the reader's producer is not started)."""


def encode(value: FilterJSON | None) -> bytes | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def decode(raw: bytes | None) -> FilterJSON | None:
    if not raw:
        return None
    value = boundedjson.loads(raw)
    return value if isinstance(value, dict) else None


class TxIndex:
    """(offset, hash) of the transaction topic's recent records, per partition, in offset order."""

    def __init__(self, max_per_partition: int = 100_000) -> None:
        self.max_per_partition = max_per_partition
        self._offsets: dict[int, list[int]] = {}
        self._hashes: dict[int, list[bytes]] = {}
        self.next_offsets: dict[int, int] = {}
        """Next offset of each partition past what the index holds (the topic's head as read here)."""

    def add(self, partition: int, offset: int, tx_hash: bytes) -> None:
        offsets = self._offsets.setdefault(partition, [])
        hashes = self._hashes.setdefault(partition, [])
        offsets.append(offset)
        hashes.append(tx_hash)
        if len(offsets) > 2 * self.max_per_partition:
            del offsets[: self.max_per_partition]
            del hashes[: self.max_per_partition]
        self.advance(partition, offset + 1)

    def advance(self, partition: int, next_offset: int) -> None:
        self.next_offsets[partition] = max(self.next_offsets.get(partition, 0), next_offset)

    def since(self, cursor: dict[int, int], limit: int) -> tuple[list[bytes], dict[int, int]]:
        """Hashes of records at or past ``cursor`` (per partition, in partition order), at most
        ``limit``; and the cursor past them. A partition the cursor lacks starts at its head here."""
        found: list[bytes] = []
        moved = dict(cursor)
        for partition, head in sorted(self.next_offsets.items()):
            start = cursor.get(partition, head)
            offsets = self._offsets.get(partition, [])
            first = bisect.bisect_left(offsets, start)
            room = max(limit - len(found), 0)
            take = self._hashes.get(partition, [])[first:first + room]
            found.extend(take)
            if take:
                moved[partition] = offsets[first + len(take) - 1] + 1
            elif room:
                moved[partition] = max(start, head)
            else:
                moved[partition] = start
        return found, moved

    def head(self) -> dict[int, int]:
        return dict(self.next_offsets)

    def longest(self) -> int:
        """Entries of the partition holding the most (each holds at most twice ``max_per_partition``)."""
        return max((len(offsets) for offsets in self._offsets.values()), default=0)


class FilterStore(SharedView):
    """Filters by id (a copy of the topic's latest value per key), with their publisher.

    Arguments:
        clock: the time source (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        self._filters: dict[str, FilterJSON] = {}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        """Filter id -> (its lock, how many calls hold or await it): only ids in use, so polls of
        made-up ids (clients send anything) leave nothing behind."""
        self.transactions = TxIndex()
        self.publisher: Publisher | None = None
        """Set by the topic reader once its producer is started."""
        self.records_read = 0

    # -- the topic reader's side ----------------------------------------------------------

    def apply(self, filter_id: str, value: FilterJSON | None) -> None:
        """A record read off the topic (None: the filter is gone)."""
        self.records_read += 1
        if value is None:
            self._filters.pop(filter_id, None)
        else:
            self._filters[filter_id] = value

    # -- the RPC's side -------------------------------------------------------------------

    def get(self, filter_id: str) -> FilterJSON | None:
        return self._filters.get(filter_id)

    def __len__(self) -> int:
        return len(self._filters)

    def ids(self) -> list[str]:
        return list(self._filters)

    @contextlib.asynccontextmanager
    async def lock(self, filter_id: str) -> AsyncIterator[None]:
        """Serialises this replica's calls on one filter (two polls here never read one cursor).

        The lock exists while some call holds or awaits it, and is forgotten with the last one."""
        lock, users = self._locks.get(filter_id, (asyncio.Lock(), 0))
        self._locks[filter_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[filter_id]
            if users == 1:
                del self._locks[filter_id]
            else:
                self._locks[filter_id] = (lock, users - 1)

    @property
    def locks_in_use(self) -> int:
        return len(self._locks)

    async def put(self, filter_id: str, value: FilterJSON | None) -> None:
        """Publish the filter's new JSON (None: remove it), wait for the broker's ack, then hold it here.

        Raises ``FilterStoreUnavailable`` before the reader started, or what the producer raises.
        """
        if self.publisher is None:
            raise FilterStoreUnavailable("the filter store is not started")
        await self.publisher(filter_id, value)
        if value is None:
            self._filters.pop(filter_id, None)
        else:
            self._filters[filter_id] = value

    def expired(self, timeout: float) -> list[str]:
        """Ids of filters not touched for ``timeout`` seconds."""
        cutoff = self.clock() - timeout
        return [fid for fid, value in list(self._filters.items()) if float(value.get("touched", 0)) <= cutoff]

    async def expire(self, timeout: float, ack_timeout: float) -> int:
        """Tombstone the filters idle for ``timeout`` seconds; returns how many were removed.

        Each removal holds its filter's lock while the broker acknowledges the tombstone, so it
        waits at most ``ack_timeout``: on a broker that stopped answering, an unbounded wait held
        the lock (and the polls of that filter behind it) and stalled every later expiry. A
        filter whose tombstone timed out is still idle and is tried again next round.
        """
        removed = 0
        for filter_id in self.expired(timeout):
            async with self.lock(filter_id):
                value = self.get(filter_id)
                if value is None or float(value.get("touched", 0)) > self.clock() - timeout:
                    continue  # polled meanwhile
                await asyncio.wait_for(self.put(filter_id, None), ack_timeout)
                removed += 1
        return removed

