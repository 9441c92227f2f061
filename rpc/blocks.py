"""Blocks: by number or hash, counts, uncles, block receipts and the raw debug getters."""

from __future__ import annotations



import rlp

from rpc import params as p
from rpc.backend import BlockData, ReplicaBackend
from rpc.dispatch import Method, MethodTable
from rpc.errors import ServerError
from rpc.format import JSON, block_json, data, quantity, receipt_json, uncle_json
from rpc.blockref import BlockNumber, BlockRef, block_number, block_ref


def eth_get_block_by_number(backend: ReplicaBackend, number: BlockNumber, full: bool) -> JSON | None:
    block = backend.block_by_number(number)
    return None if block is None else block_json(block, full)


def eth_get_block_by_hash(backend: ReplicaBackend, block_hash: bytes, full: bool) -> JSON | None:
    block = backend.block_by_hash(block_hash)
    return None if block is None else block_json(block, full)


def _transaction_count(block: BlockData | None) -> str | None:
    return None if block is None else quantity(len(block.transactions))


def _uncle_count(block: BlockData | None) -> str | None:
    return None if block is None else quantity(len(block.block.uncles))


def eth_get_block_transaction_count_by_number(backend: ReplicaBackend, number: BlockNumber) -> str | None:
    return _transaction_count(backend.block_by_number(number))


def eth_get_block_transaction_count_by_hash(backend: ReplicaBackend, block_hash: bytes) -> str | None:
    return _transaction_count(backend.block_by_hash(block_hash))


def eth_get_uncle_count_by_block_number(backend: ReplicaBackend, number: BlockNumber) -> str | None:
    return _uncle_count(backend.block_by_number(number))


def eth_get_uncle_count_by_block_hash(backend: ReplicaBackend, block_hash: bytes) -> str | None:
    return _uncle_count(backend.block_by_hash(block_hash))


def _uncle(block: BlockData | None, index: int) -> JSON | None:
    """An uncle header shown as a block; its size is that of a body-less block."""
    if block is None or index >= len(block.block.uncles):
        return None
    uncle = block.block.uncles[index]
    return uncle_json(uncle, len(rlp.encode([uncle, [], []])))


def eth_get_uncle_by_block_number_and_index(backend: ReplicaBackend, number: BlockNumber,
                                            index: int) -> JSON | None:
    return _uncle(backend.block_by_number(number), index)


def eth_get_uncle_by_block_hash_and_index(backend: ReplicaBackend, block_hash: bytes,
                                          index: int) -> JSON | None:
    return _uncle(backend.block_by_hash(block_hash), index)


def eth_get_block_receipts(backend: ReplicaBackend, ref: BlockRef) -> list[JSON] | None:
    block = backend.block_by_ref(ref)
    if block is None:
        return None
    return [receipt_json(block, index) for index in range(len(block.transactions))]


def _raw_block(backend: ReplicaBackend, ref: BlockRef) -> BlockData:
    """The block the debug getters encode; geth errors rather than answering null."""
    block = backend.block_by_ref(ref)
    if block is None:
        shown = data(ref.block_hash) if ref.block_hash is not None else ref.number
        raise ServerError(f"block #{shown} not found")
    return block


def debug_get_raw_block(backend: ReplicaBackend, ref: BlockRef) -> str:
    return data(rlp.encode(_raw_block(backend, ref).block))


def debug_get_raw_header(backend: ReplicaBackend, ref: BlockRef) -> str:
    return data(rlp.encode(_raw_block(backend, ref).header))


def debug_get_raw_receipts(backend: ReplicaBackend, ref: BlockRef) -> list[str]:
    """Consensus encodings (EIP-2718 envelopes for typed receipts)."""
    block = backend.block_by_ref(ref)
    if block is None:
        return []
    return [data(receipt.encode()) for receipt in block.receipts]


BLOCK_NUMBER = p.required(block_number)
BLOCK_HASH = p.required(p.hash32)
BLOCK_REF = p.required(block_ref)
FULL = p.required(p.boolean)
INDEX = p.required(p.uint)

METHODS: MethodTable = {
    "eth_getBlockByNumber": Method(eth_get_block_by_number, (BLOCK_NUMBER, FULL)),
    "eth_getBlockByHash": Method(eth_get_block_by_hash, (BLOCK_HASH, FULL)),
    "eth_getBlockTransactionCountByNumber": Method(eth_get_block_transaction_count_by_number, (BLOCK_NUMBER,)),
    "eth_getBlockTransactionCountByHash": Method(eth_get_block_transaction_count_by_hash, (BLOCK_HASH,)),
    "eth_getUncleCountByBlockNumber": Method(eth_get_uncle_count_by_block_number, (BLOCK_NUMBER,)),
    "eth_getUncleCountByBlockHash": Method(eth_get_uncle_count_by_block_hash, (BLOCK_HASH,)),
    "eth_getUncleByBlockNumberAndIndex": Method(eth_get_uncle_by_block_number_and_index, (BLOCK_NUMBER, INDEX)),
    "eth_getUncleByBlockHashAndIndex": Method(eth_get_uncle_by_block_hash_and_index, (BLOCK_HASH, INDEX)),
    "eth_getBlockReceipts": Method(eth_get_block_receipts, (BLOCK_REF,)),
    "debug_getRawBlock": Method(debug_get_raw_block, (BLOCK_REF,)),
    "debug_getRawHeader": Method(debug_get_raw_header, (BLOCK_REF,)),
    "debug_getRawReceipts": Method(debug_get_raw_receipts, (BLOCK_REF,)),
}


