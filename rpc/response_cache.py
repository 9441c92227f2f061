"""Answers from memory: serialized results keyed by what fixes them.

Clients poll the same questions every block (balances, ``balanceOf``, reserves, the
head block), and an answer about an immutable block is immutable. Every answer of a
method in :data:`CACHEABLE` is a function of its parameters and of one block of the
canonical chain: the block it names, or the head. The key is (scope, method, the
parameters' canonical bytes), where the scope (``rpc.answerscope``) is that block's hash:
the named block's when the question names one by number or hash (or is a receipt, whose
block is the one holding the transaction), else the head's. Answers about the head miss
once the head moves or a reorg rewrites it; answers about a named block stay until a
reorg replaces that block, which changes the scope. Entries of older heads are not
wrong, only unreachable until a reorg returns there; the byte bound evicts them, least
recently used first.

What stays out: methods that read the cluster's pending transactions or filters, the
sync status or anything else no block fixes (see :data:`CACHEABLE`), and errors (a
not-ready replica, a revert) which are cheap to recompute or transient. The cache holds
the encoded ``result`` member, so a hit is served without re-encoding.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, Awaitable, Callable

import orjson

CACHEABLE = frozenset({
    "eth_chainId",
    "eth_blockNumber",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getBlockTransactionCountByHash",
    "eth_getUncleCountByBlockNumber",
    "eth_getUncleCountByBlockHash",
    "eth_getUncleByBlockNumberAndIndex",
    "eth_getUncleByBlockHashAndIndex",
    "eth_getBlockReceipts",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionReceipt",
    "eth_getBalance",
    "eth_getCode",
    "eth_getStorageAt",
    "eth_getProof",
    "eth_call",
    "eth_estimateGas",
    "eth_createAccessList",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_blobBaseFee",
    "eth_feeHistory",
    "eth_getLogs",
})
"""Methods whose answer follows from (one block, parameters) alone. Left out on purpose:
eth_getTransactionCount and eth_getTransactionByHash (they read the pending view),
txpool_*, filters, eth_syncing, eth_sendRawTransaction."""

CacheKey = tuple[bytes, str, bytes]


def compact(encoded: bytes) -> bytes:
    """A copy of ``encoded`` that takes only its length, for any encoding held longer than a request:
    orjson (3.13) returns bytes that keep the 4 KiB buffer they were written into, so a cache of
    small answers would hold 4 KiB per answer and parameter while counting a few dozen bytes (seen:
    11k entries counted as 3 MB, held 87 MB), and a WebSocket send queue 4 KiB per message."""
    return bytes(memoryview(encoded))


def _cancelling() -> bool:
    """Whether the running task itself is being cancelled."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class ResponseCache:
    """Encoded results by (scope, method, parameters), bounded in bytes.

    Arguments:
        max_bytes: the most bytes of encoded results (and keys) held; 0 turns the cache off.
    """

    ENTRY_OVERHEAD = 400
    """Bytes counted per entry beside the payload and the parameters (the dict slot, the
    tuple, the head hash, the method name, the bytes objects' headers: 461 bytes held per
    entry of a 20-byte answer, measured), so many tiny answers cannot exceed the bound."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[CacheKey, bytes] = OrderedDict()
        self._computing: dict[CacheKey, asyncio.Future[bytes]] = {}

    def holds(self, method: str) -> bool:
        """Whether answers of ``method`` are kept (the cache is on and the method is cacheable)."""
        return self.max_bytes > 0 and method in CACHEABLE

    def key(self, scope: bytes, method: str, params: Any) -> CacheKey | None:
        """The key of a call whose answer ``scope`` fixes, or None when its answer must not be cached."""
        if not self.holds(method):
            return None
        try:
            return scope, method, orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an integer beyond 64 bits: rare enough to always compute
            return None

    async def answer(self, key: CacheKey, compute: Callable[[], Awaitable[bytes]], keep: Callable[[], bool]) -> bytes:
        """The encoded result under ``key``: from memory, from a computation of it already under way,
        or computed now and kept if ``keep()`` still says so (the head did not move meanwhile).

        When a block lands, every polling client asks its question again at once; the first one
        computes and the rest await it, so an eth_call runs once per head, not once per client.
        A failure (a revert, a timeout) reaches every caller that awaited it and is not kept."""
        payload = self.get(key)
        if payload is not None:
            return payload
        running = self._computing.get(key)
        if running is not None:
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                if not running.cancelled() or _cancelling():
                    raise
                # the caller computing it went away (its client hung up): compute it here
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._computing[key] = future
        try:
            payload = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody awaiting it is no error worth a log line
            raise
        finally:
            if self._computing.get(key) is future:
                del self._computing[key]
        future.set_result(payload)
        if keep():
            self.put(key, payload)
        return payload

    def get(self, key: CacheKey) -> bytes | None:
        """The encoded result stored under ``key`` (counted as a hit or a miss)."""
        payload = self._entries.get(key)
        if payload is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return payload

    def put(self, key: CacheKey, payload: bytes) -> None:
        """Keep ``payload``, evicting the least recently used entries beyond the byte bound.

        An answer larger than an eighth of the bound is not kept: one huge eth_getLogs
        would otherwise flush every small answer the clients poll."""
        cost = self._cost(key, payload)
        if cost * 8 > self.max_bytes or key in self._entries:
            return
        head, method, params = key
        self._entries[(head, method, compact(params))] = compact(payload)
        self.size += cost
        while self.size > self.max_bytes:
            old_key, old_payload = self._entries.popitem(last=False)
            self.size -= self._cost(old_key, old_payload)

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _cost(self, key: CacheKey, payload: bytes) -> int:
        return len(payload) + len(key[2]) + self.ENTRY_OVERHEAD
