"""The same head on every replica: a request naming a block a little ahead waits for it.

Behind a load balancer a client sees block N from one replica and asks another for it,
which may be a few milliseconds behind: without waiting it answers ``null`` or "header
not found". A call whose block parameter names a number at most ``max_blocks`` past
this replica's head, or a block hash this replica does not hold yet, waits until the
head reaches it or ``max_wait`` passes, then is answered as usual (so a block that
never comes is still "not found", only later). Cardinal, OpenRelay's successor to
Ether Cattle, does the same with 5 blocks and 500 ms.

Requests naming a transaction by hash do not wait: a replica cannot tell a transaction
a block ahead from one never mined, and clients poll receipts of their own transactions
until they appear, so every such poll would stall for the whole bound. Neither can it
tell an unknown block hash a block ahead from one made up: at most ``max_waiting`` calls
wait at once, so a stranger asking for made-up hashes holds only that many of the
requests a replica serves at once (``RPC_MAX_IN_FLIGHT``); the rest answer at once.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

from rpc.backend import ReplicaBackend
from rpc.blockref import BlockRef, block_ref
from rpc.errors import NotReady
from rpc.params import ArgumentError

HEAD_HEADER = "X-Ethercattle-Head"
"""The HTTP response header carrying this replica's head block number (decimal), so clients and
the load balancer see how current the replica that answered is."""


def head_number(backend: ReplicaBackend) -> int | None:
    """The canonical head's number, or None before the chain arrived (a cached header read)."""
    found = backend.head_hash()
    try:
        header = None if found is None else backend.header_by_hash(found)
    except NotReady:  # the chain's configuration has not arrived yet
        return None
    return None if header is None else header.block_number


BLOCK_PARAM: Mapping[str, int] = {
    "eth_getBlockByNumber": 0,
    "eth_getBlockByHash": 0,
    "eth_getBlockTransactionCountByNumber": 0,
    "eth_getBlockTransactionCountByHash": 0,
    "eth_getUncleCountByBlockNumber": 0,
    "eth_getUncleCountByBlockHash": 0,
    "eth_getUncleByBlockNumberAndIndex": 0,
    "eth_getUncleByBlockHashAndIndex": 0,
    "eth_getBlockReceipts": 0,
    "eth_getTransactionByBlockHashAndIndex": 0,
    "eth_getTransactionByBlockNumberAndIndex": 0,
    "eth_getRawTransactionByBlockHashAndIndex": 0,
    "eth_getRawTransactionByBlockNumberAndIndex": 0,
    "debug_getRawBlock": 0,
    "debug_getRawHeader": 0,
    "debug_getRawReceipts": 0,
    "eth_getBalance": 1,
    "eth_getTransactionCount": 1,
    "eth_getCode": 1,
    "eth_call": 1,
    "eth_estimateGas": 1,
    "eth_createAccessList": 1,
    "eth_getStorageAt": 2,
    "eth_getProof": 2,
}
"""Position of the block parameter of each method that names one block."""


class BlockWait:
    """Holds calls that name a block just past the head until the apply agent writes it.

    Arguments:
        max_blocks: how far past the head a block number may be and still be waited for (0: never wait).
        max_wait: the longest one call waits, in seconds.
        max_waiting: the most calls waiting at once; more are answered without waiting.
    """

    def __init__(self, max_blocks: int, max_wait: float, max_waiting: int = 4) -> None:
        self.max_blocks = max_blocks
        self.max_wait = max_wait
        self.max_waiting = max_waiting
        self.waited = 0
        """Calls that had to wait (for metrics and tests)."""
        self.waiting = 0
        self._moved: asyncio.Event | None = None

    def head_moved(self) -> None:
        """The apply agent wrote: wake every waiting call to look at the head again."""
        if self._moved is not None:
            self._moved.set()
            self._moved = None

    async def until_named_block(self, backend: ReplicaBackend, method: str, params: Any) -> None:
        """Return once the block ``params`` name is here, or it is not a little ahead, or time is up."""
        ref = self._named(method, params)
        if ref is None or self.waiting >= self.max_waiting or self._present(backend, ref) is not False:
            return
        self.waited += 1
        self.waiting += 1
        try:
            await self._wait_for(backend, ref)
        finally:
            self.waiting -= 1

    async def _wait_for(self, backend: ReplicaBackend, ref: BlockRef) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while (left := deadline - loop.time()) > 0:
            if self._moved is None:
                self._moved = asyncio.Event()
            try:
                await asyncio.wait_for(self._moved.wait(), left)
            except asyncio.TimeoutError:
                return
            if self._present(backend, ref) is not False:
                return

    def _named(self, method: str, params: Any) -> BlockRef | None:
        """The block a call names, or None (no block parameter, a tag, or one the handler will refuse)."""
        position = BLOCK_PARAM.get(method)
        if self.max_blocks <= 0 or position is None or not isinstance(params, list) or len(params) <= position:
            return None
        try:
            ref = block_ref(params[position])
        except ArgumentError:
            return None
        if isinstance(ref.number, int) or ref.block_hash is not None:
            return ref
        return None

    def _present(self, backend: ReplicaBackend, ref: BlockRef) -> bool | None:
        """True when the block is here, False when it is a little ahead, None when waiting cannot help."""
        if ref.block_hash is not None:
            return backend.header_by_hash(ref.block_hash) is not None
        assert isinstance(ref.number, int)
        head = backend.head().block_number
        if ref.number <= head:
            return True
        return False if ref.number - head <= self.max_blocks else None
