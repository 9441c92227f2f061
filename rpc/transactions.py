"""Transactions: by hash or block position, their receipts, and raw encodings."""

from __future__ import annotations

from rpc import params as p
from rpc.backend import BlockData, ReplicaBackend
from rpc.dispatch import Method, MethodTable
from rpc.format import JSON, data, receipt_json, transaction_json
from rpc.blockref import BlockNumber, block_number

EMPTY_DATA = "0x"
"""geth answers the raw getters' "not found" with an empty byte string, not null."""


def _transaction(block: BlockData | None, index: int) -> JSON | None:
    if block is None or index >= len(block.transactions):
        return None
    return transaction_json(block.transactions[index], block.sender(index), block, index)


def _raw(block: BlockData | None, index: int) -> str:
    if block is None or index >= len(block.transactions):
        return EMPTY_DATA
    return data(block.transactions[index].encode())


def eth_get_transaction_by_hash(backend: ReplicaBackend, tx_hash: bytes) -> JSON | None:
    """A mined transaction, else a pending one of the cluster (block fields null), else null."""
    location = backend.transaction_location(tx_hash)
    if location is not None:
        return _transaction(*location)
    pending = backend.pending.get(tx_hash)
    return None if pending is None else transaction_json(pending[0], pending[1], None, None)


def eth_get_transaction_by_block_hash_and_index(backend: ReplicaBackend, block_hash: bytes,
                                                index: int) -> JSON | None:
    return _transaction(backend.block_by_hash(block_hash), index)


def eth_get_transaction_by_block_number_and_index(backend: ReplicaBackend, number: BlockNumber,
                                                  index: int) -> JSON | None:
    return _transaction(backend.block_by_number(number), index)


def eth_get_transaction_receipt(backend: ReplicaBackend, tx_hash: bytes) -> JSON | None:
    location = backend.transaction_location(tx_hash)
    return None if location is None else receipt_json(*location)


def eth_get_raw_transaction_by_hash(backend: ReplicaBackend, tx_hash: bytes) -> str:
    location = backend.transaction_location(tx_hash)
    if location is not None:
        return _raw(*location)
    pending = backend.pending.get(tx_hash)
    return EMPTY_DATA if pending is None else data(pending[0].encode())


def eth_get_raw_transaction_by_block_hash_and_index(backend: ReplicaBackend, block_hash: bytes,
                                                    index: int) -> str:
    return _raw(backend.block_by_hash(block_hash), index)


def eth_get_raw_transaction_by_block_number_and_index(backend: ReplicaBackend, number: BlockNumber,
                                                      index: int) -> str:
    return _raw(backend.block_by_number(number), index)


TX_HASH = p.required(p.hash32)
BLOCK_HASH = p.required(p.hash32)
BLOCK_NUMBER = p.required(block_number)
INDEX = p.required(p.uint)

METHODS: MethodTable = {
    "eth_getTransactionByHash": Method(eth_get_transaction_by_hash, (TX_HASH,)),
    "eth_getTransactionByBlockHashAndIndex": Method(
        eth_get_transaction_by_block_hash_and_index, (BLOCK_HASH, INDEX)),
    "eth_getTransactionByBlockNumberAndIndex": Method(
        eth_get_transaction_by_block_number_and_index, (BLOCK_NUMBER, INDEX)),
    "eth_getTransactionReceipt": Method(eth_get_transaction_receipt, (TX_HASH,)),
    "eth_getRawTransactionByHash": Method(eth_get_raw_transaction_by_hash, (TX_HASH,)),
    "eth_getRawTransactionByBlockHashAndIndex": Method(
        eth_get_raw_transaction_by_block_hash_and_index, (BLOCK_HASH, INDEX)),
    "eth_getRawTransactionByBlockNumberAndIndex": Method(
        eth_get_raw_transaction_by_block_number_and_index, (BLOCK_NUMBER, INDEX)),
    "debug_getRawTransaction": Method(eth_get_raw_transaction_by_hash, (TX_HASH,)),
}
