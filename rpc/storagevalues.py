"""eth_getStorageValues: many storage slots of many accounts at one block, in one request.

The values come from the same trie reads and caches as eth_getStorageAt, against one
resolved block, so every slot answers for the same state. geth bounds the slots per
request; so do we, with its error.
"""

from __future__ import annotations

from typing import Any

from rpc import params as p
from rpc.backend import ReplicaBackend
from rpc.blockref import LATEST, BlockRef, block_ref
from rpc.dispatch import Method, MethodTable
from rpc.errors import INVALID_PARAMS, RpcError
from rpc.format import JSON, data

MAX_SLOTS = 1024
"""geth's ``maxGetStorageSlots``: most slots one request may read."""
CLIENT_LIMIT_EXCEEDED = -38026

StorageRequest = dict[bytes, list[bytes]]


def storage_request(value: Any) -> StorageRequest:
    """Decode ``map[common.Address][]common.Hash``."""
    if not isinstance(value, dict):
        raise p.TypeMismatch(p.json_kind(value), "map[common.Address][]common.Hash")
    slots = p.list_of(p.hash32, "[]common.Hash")
    return {p.address(address): slots(keys) or [] for address, keys in value.items()}


def eth_get_storage_values(backend: ReplicaBackend, request: StorageRequest, ref: BlockRef | None) -> JSON:
    if not request:
        raise RpcError("empty request", code=INVALID_PARAMS)
    if sum(len(keys) for keys in request.values()) > MAX_SLOTS:
        raise RpcError(f"too many slots (max {MAX_SLOTS})", code=CLIENT_LIMIT_EXCEEDED)
    header = backend.resolve_ref(ref or LATEST)
    values: JSON = {}
    for address, keys in request.items():
        account = backend.state.account(header.state_root, address)
        values[data(address)] = [
            data(backend.state.storage(account, int.from_bytes(key, "big")).to_bytes(32, "big")) for key in keys
        ]
    return values


METHODS: MethodTable = {
    "eth_getStorageValues": Method(eth_get_storage_values, (p.required(storage_request), p.optional(block_ref))),
}
