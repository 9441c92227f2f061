"""Chain-level facts: chain id, head number, sync progress, and the mining stubs."""

from __future__ import annotations

from typing import Any

from rpc.backend import ReplicaBackend
from rpc.dispatch import Method, MethodTable
from rpc.format import quantity

PROTOCOL_VERSION = 68
"""eth/68, the wire protocol of the master this replica follows."""


def eth_chain_id(backend: ReplicaBackend) -> str:
    return quantity(backend.chain_id)


def eth_block_number(backend: ReplicaBackend) -> str:
    return quantity(backend.head().block_number)


def eth_syncing(backend: ReplicaBackend) -> Any:
    """false when caught up, else geth's progress object (the block fields of it)."""
    progress = backend.sync_status.progress()
    if progress is None:
        return False
    return {
        "startingBlock": quantity(progress.starting_block),
        "currentBlock": quantity(progress.current_block),
        "highestBlock": quantity(progress.highest_block),
    }


def eth_protocol_version(backend: ReplicaBackend) -> str:
    return quantity(PROTOCOL_VERSION)


def eth_accounts(backend: ReplicaBackend) -> list[str]:
    """A replica holds no keys."""
    return []


def eth_mining(backend: ReplicaBackend) -> bool:
    return False


def eth_hashrate(backend: ReplicaBackend) -> str:
    return "0x0"


METHODS: MethodTable = {
    "eth_chainId": Method(eth_chain_id),
    "eth_blockNumber": Method(eth_block_number),
    "eth_syncing": Method(eth_syncing),
    "eth_protocolVersion": Method(eth_protocol_version),
    "eth_accounts": Method(eth_accounts),
    "eth_mining": Method(eth_mining),
    "eth_hashrate": Method(eth_hashrate),
}
