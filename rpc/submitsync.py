"""eth_sendRawTransactionSync (EIP-7966): send a transaction and answer its receipt once a block holds it.

The transaction goes out exactly as eth_sendRawTransaction sends it; the replica then
watches its own database, which the apply agent fills from the master's log, until the
receipt appears or the timeout passes. The timeout is the caller's (milliseconds),
bounded by geth's maximum, or geth's default; on expiry the answer is geth's error
code 4 with the transaction hash as data, so the client can keep polling.
"""

from __future__ import annotations

import asyncio
import time

from eth_utils import keccak

from chain.transactions import split_network_form
from rpc import params as p
from rpc.backend import ReplicaBackend
from rpc.dispatch import Method, MethodTable
from rpc.errors import RpcError
from rpc.evm import go_duration
from rpc.format import JSON, data, receipt_json
from rpc.submit import chain_checked, eth_send_raw_transaction

DEFAULT_TIMEOUT = 20.0
"""geth's ``--rpc.txsync.defaulttimeout``, seconds."""
MAX_TIMEOUT = 60.0
"""geth's ``--rpc.txsync.maxtimeout``, seconds."""
POLL_INTERVAL = 0.025
"""How often the replica's own database is checked for the receipt (a LevelDB get)."""
TX_SYNC_TIMEOUT = 4
"""geth's ``errCodeTxSyncTimeout``."""


def sync_timeout(timeout_ms: int | None) -> float:
    """The wait in seconds: the caller's, capped by the maximum; the default when absent or zero."""
    if not timeout_ms:
        return DEFAULT_TIMEOUT
    return min(timeout_ms / 1000, MAX_TIMEOUT)


async def eth_send_raw_transaction_sync(backend: ReplicaBackend, raw: bytes, timeout_ms: int | None) -> JSON:
    await eth_send_raw_transaction(backend, raw)
    canonical, _ = chain_checked(lambda: split_network_form(raw))
    tx_hash = keccak(canonical)
    timeout = sync_timeout(timeout_ms)
    deadline = time.monotonic() + timeout
    while True:
        location = backend.transaction_location(tx_hash)
        if location is not None:
            return receipt_json(*location)
        if time.monotonic() >= deadline:
            raise RpcError(f"The transaction was added to the transaction pool but wasn't processed in "
                           f"{go_duration(timeout)}.", data=data(tx_hash), code=TX_SYNC_TIMEOUT)
        await asyncio.sleep(POLL_INTERVAL)


METHODS: MethodTable = {
    "eth_sendRawTransactionSync": Method(eth_send_raw_transaction_sync, (p.required(p.data), p.optional(p.uint64)),
                                         waits_on_broker=True, waits_long=True),
}
