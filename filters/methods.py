"""Filters polled over JSON-RPC, shared by every replica of the cluster.

``eth_newFilter``, ``eth_newBlockFilter``, ``eth_newPendingTransactionFilter``,
``eth_getFilterChanges``, ``eth_getFilterLogs`` and ``eth_uninstallFilter`` with
go-ethereum's semantics: a poll returns what arrived since the previous poll; a
filter not polled for the timeout is gone; an unknown id is "filter not found"
(-32000).

Filter state is not this process's: a ``FilterStore`` (the replica's view of the
cluster's filter topic) holds each filter as JSON::

    {"kind": "blocks" | "logs" | "pending", "criteria": <eth_newFilter's argument>,
     "cursor": <last block number delivered>, "cursorHash": <its hash>,
     "pending": {"<partition>": <next offset>}, "created": t, "touched": t}

A poll syncs the store (the barrier: everything acknowledged before the poll
arrived is read), computes changes from the cursor to this replica's head, publishes
the new cursor and waits for the broker's ack before answering. A cursor ahead of
this replica's head (set by a replica that applied more) yields ``[]``: never a
block twice, never backwards.

Duplicates: a client that sends its next poll after the previous answer arrived
never sees a change twice, whichever replicas answer (the answer came after the
ack, the next poll's barrier reads past it). Two polls of one filter in flight at
once on two replicas may both read one cursor and return the same changes (on
one replica they are serialised by a lock). If the barrier gives up
(``FILTER_SYNC_TIMEOUT``, a broker stalled for seconds), the poll goes on with
what it has, and may repeat the previous poll's changes.

Every call here waits on the broker, so they have their own bound apart from the
replica's request slots (``rpc.brokerwait``), and a call whose record the broker does not
acknowledge within ``RPC_BROKER_TIMEOUT`` answers -32000 and may be retried: the
record may still land later (an install then leaves a filter nobody polls, which
expires; a poll's cursor moves past changes its caller never got). An install
does not wait for the barrier: the filter is new, so nothing another replica wrote
can concern it, and the cluster's count it checks against ``FILTER_MAX`` may miss
only the installs of the last fetch wait. Waiting there cost every install a fetch
round trip (20-40 ms here, 2 s on a local broker whose filter topic had grown).
"""

from __future__ import annotations

import secrets
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from rpc.backend import ReplicaBackend
from rpc.brokerwait import acknowledged
from rpc.dispatch import Method, MethodTable
from rpc.errors import LimitExceeded, ServerError
from rpc.format import JSON, data
from rpc.logs import (
    MAX_TOPICS,
    LogFilter,
    block_logs,
    bloom_matches,
    eth_get_logs,
    log_filter,
)
from rpc.params import Param, boolean, optional, string

FilterJSON = dict[str, Any]


class FilterStore(Protocol):
    """The cluster's filters as this replica knows them (``filters.store.FilterStore``)."""

    async def sync(self) -> None:
        """Wait until the view holds what the filter topic held when called."""

    def get(self, filter_id: str) -> FilterJSON | None: ...

    loaded: bool
    """The view read the filter topic to its end at least once."""

    def __len__(self) -> int: ...

    def lock(self, filter_id: str) -> AbstractAsyncContextManager[None]: ...

    async def put(self, filter_id: str, value: FilterJSON | None) -> None:
        """Publish (None: remove) and return once the broker acknowledged it."""

    @property
    def transactions(self) -> "TransactionIndex": ...


class TransactionIndex(Protocol):
    """Positions in the cluster's transaction topic (the pending filter's cursor)."""

    def since(self, cursor: dict[int, int], limit: int) -> tuple[list[bytes], dict[int, int]]: ...

    def head(self) -> dict[int, int]: ...


class FilterNotFound(ServerError):
    def __init__(self) -> None:
        super().__init__("filter not found")


@dataclass(frozen=True)
class FilterLimits:
    timeout: float = 300.0
    """Seconds a filter lives without a poll (geth: 5 minutes)."""
    max_filters: int = 10_000
    """Most filters installed in the cluster at once."""
    max_results: int = 10_000
    """Most hashes or logs one poll returns; the rest come with the next poll."""
    ack_timeout: float = 5.0
    """Seconds a call waits for the broker to acknowledge its filter record (``RPC_BROKER_TIMEOUT``)."""


def filter_criteria(value: Any) -> Any:
    """eth_newFilter's argument as sent (it is stored on the filter topic), once it decodes as a
    log filter: a bad one is -32602 here, not a crash in the handler."""
    log_filter(value)
    return value


def filter_id(value: Any) -> str:
    """A filter id as geth's ``rpc.ID`` reads it (any string), lower-cased."""
    return string(value).lower()


class Filters:
    """The filter methods over one backend's chain and one filter store."""

    def __init__(self, store: FilterStore, limits: FilterLimits | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.limits = limits or FilterLimits()
        self.clock = clock
        self._installing = 0
        """Installs waiting for the broker: counted against the bound, or as many as wait could pass it."""

    # -- install / uninstall ------------------------------------------------------------

    async def _publish(self, fid: str, value: FilterJSON | None) -> None:
        """Put the filter's new record on the topic, waiting for the broker at most ``ack_timeout``."""
        await acknowledged(self.store.put(fid, value), "the filter's record", self.limits.ack_timeout)

    async def _install(self, value: FilterJSON) -> str:
        """Install a filter, within ``max_filters`` counting this replica's installs still on their way
        (installs on other replicas at the same moment may each pass it by their own few)."""
        if len(self.store) + self._installing >= self.limits.max_filters:
            raise LimitExceeded(f"too many filters: the cluster holds at most {self.limits.max_filters}")
        new_id = "0x" + secrets.token_hex(16)
        now = self.clock()
        self._installing += 1
        try:
            await self._publish(new_id, {**value, "created": now, "touched": now})
        finally:
            self._installing -= 1
        return new_id

    async def new_filter(self, backend: ReplicaBackend, criteria: Any) -> str:
        flt = log_filter(criteria)
        if len(flt.topics) > MAX_TOPICS:
            raise ServerError("exceed max topics")
        if flt.block_hash is not None:
            raise ServerError("can't specify blockhash in filter criteria")
        head = backend.head()
        return await self._install({"kind": "logs", "criteria": criteria, "cursor": head.block_number,
                                    "cursorHash": data(head.hash)})

    async def new_block_filter(self, backend: ReplicaBackend) -> str:
        head = backend.head()
        return await self._install({"kind": "blocks", "cursor": head.block_number, "cursorHash": data(head.hash)})

    async def new_pending_transaction_filter(self, backend: ReplicaBackend, full: Any = None) -> str:
        head = self.store.transactions.head()
        return await self._install({"kind": "pending", "pending": {str(p): o for p, o in head.items()}})

    async def uninstall(self, backend: ReplicaBackend, fid: str) -> bool:
        await self.store.sync()
        async with self.store.lock(fid):
            if self.store.get(fid) is None:
                return False
            await self._publish(fid, None)
            return True

    # -- polls -----------------------------------------------------------------------------

    async def _live(self, fid: str) -> FilterJSON:
        """The filter, or FilterNotFound (an expired one is removed on the way)."""
        value = self.store.get(fid)
        if value is None:
            if not self.store.loaded:
                raise ServerError("filters are still loading on this replica; try again")
            raise FilterNotFound()
        if float(value.get("touched", 0)) + self.limits.timeout <= self.clock():
            await self._publish(fid, None)
            raise FilterNotFound()
        return value

    async def get_filter_changes(self, backend: ReplicaBackend, fid: str) -> list[Any]:
        await self.store.sync()
        async with self.store.lock(fid):
            value = await self._live(fid)
            kind = value.get("kind")
            if kind == "pending":
                cursor = {int(p): int(o) for p, o in value.get("pending", {}).items()}
                hashes, moved = self.store.transactions.since(cursor, self.limits.max_results)
                changed = moved != cursor
                result: list[Any] = [data(h) for h in hashes]
                updated = {**value, "pending": {str(p): o for p, o in moved.items()}}
            else:
                result, updated = await backend.offload(self._chain_changes, backend, value)
                changed = updated["cursor"] != value["cursor"]
            now = self.clock()
            if changed or float(value.get("touched", 0)) + self.limits.timeout / 4 <= now:
                await self._publish(fid, {**updated, "touched": now})
            return result

    def _chain_changes(self, backend: ReplicaBackend, value: FilterJSON) -> tuple[list[Any], FilterJSON]:
        """Block hashes or logs of the blocks after the cursor, up to this replica's head.

        When the cursor's block left the canonical chain (the master reorganised), the
        walk restarts after the fork point: a block filter returns the new canonical
        hashes, a log filter first returns the dropped blocks' logs with ``removed: true``.
        """
        head = backend.head().block_number
        moved_hash: Any
        cursor, dropped = _fork_point(backend, int(value["cursor"]), value.get("cursorHash"))
        if cursor >= head and not dropped:  # nothing new here (or another replica is ahead of this one): never go back
            return [], value
        last = min(head, cursor + backend.limits.logs_max_block_range, cursor + self.limits.max_results)
        if value.get("kind") == "blocks":
            hashes = [backend.canonical_hash(n) for n in range(cursor + 1, last + 1)]
            delivered = [h for h in hashes if h is not None]
            moved = cursor + len(delivered)
            moved_hash = data(delivered[-1]) if delivered else data(backend.canonical_hash(cursor) or b"")
            return [data(h) for h in delivered], {**value, "cursor": moved, "cursorHash": moved_hash}
        flt = log_filter(value.get("criteria"))
        logs: list[JSON] = []
        for header in dropped:
            logs.extend({**entry, "removed": True} for entry in _block_logs(backend, header, header.block_number, flt))
        moved = cursor
        moved_hash = data(backend.canonical_hash(cursor) or b"") if dropped else value.get("cursorHash")
        for number in range(cursor + 1, last + 1):
            header = backend.header_by_number(number)
            if header is None:
                break
            found = list(_block_logs(backend, header, number, flt))
            if logs and len(logs) + len(found) > self.limits.max_results:
                break  # whole blocks only: the rest comes with the next poll
            logs.extend(found)
            moved, moved_hash = number, data(header.hash)
        return logs, {**value, "cursor": moved, "cursorHash": moved_hash}

    async def get_filter_logs(self, backend: ReplicaBackend, fid: str) -> list[JSON]:
        await self.store.sync()
        value = await self._live(fid)
        if value.get("kind") != "logs":
            raise FilterNotFound()
        return await backend.offload(eth_get_logs, backend, log_filter(value.get("criteria")))

    def methods(self) -> MethodTable:
        fid = Param(filter_id, optional=False)
        return {
            "eth_newFilter": Method(self.new_filter, (Param(filter_criteria, optional=False),), waits_on_broker=True),
            "eth_newBlockFilter": Method(self.new_block_filter, waits_on_broker=True),
            "eth_newPendingTransactionFilter": Method(self.new_pending_transaction_filter, (optional(boolean),),
                                                      waits_on_broker=True),
            "eth_getFilterChanges": Method(self.get_filter_changes, (fid,), waits_on_broker=True),
            "eth_getFilterLogs": Method(self.get_filter_logs, (fid,), waits_on_broker=True),
            "eth_uninstallFilter": Method(self.uninstall, (fid,), waits_on_broker=True),
        }


MAX_REORG_DEPTH = 1024
"""Deepest reorganisation a polled filter follows back to its fork point."""


def _fork_point(backend: ReplicaBackend, cursor: int, cursor_hash: Any) -> tuple[int, list[Any]]:
    """(the canonical block to continue after, the cursor's blocks that left the canonical chain, oldest first)."""
    if not isinstance(cursor_hash, str) or len(cursor_hash) != 66:
        return cursor, []
    block_hash = bytes.fromhex(cursor_hash[2:])
    canonical = backend.canonical_hash(cursor)
    if canonical == block_hash:  # still canonical
        return cursor, []
    if canonical is None and backend.header_by_hash(block_hash) is None:  # this replica is behind the cursor
        return cursor, []
    dropped: list[Any] = []
    header = backend.header_by_hash(block_hash)
    while header is not None and backend.canonical_hash(header.block_number) != header.hash:
        dropped.append(header)
        if len(dropped) > MAX_REORG_DEPTH:
            return cursor, []
        header = backend.header_by_hash(header.parent_hash)
    if header is None:
        return cursor, []
    return header.block_number, dropped[::-1]


def _in_range(number: int, flt: LogFilter) -> bool:
    """geth's ``filterLogs`` block bounds for a log filter's changes (tags: no bound)."""
    if isinstance(flt.from_block, int) and flt.from_block >= 0 and number < flt.from_block:
        return False
    if isinstance(flt.to_block, int) and flt.to_block >= 0 and number > flt.to_block:
        return False
    return True


def _block_logs(backend: ReplicaBackend, header: Any, number: int, flt: LogFilter) -> Any:
    if not _in_range(number, flt) or not bloom_matches(header.bloom, flt):
        return iter(())
    return block_logs(backend.block(header), flt)
