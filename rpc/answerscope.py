"""What an answer is about: the block that fixes it, so a cached answer outlives the head.

The response cache keys an answer by (scope, method, parameters). An answer about a block
named by number (or ``earliest``) depends on the chain only through the canonical hash at
that number; one about a block named by hash, only through that block and whether it is
canonical (EIP-1898's ``requireCanonical`` turns the answer into an error when it is not); a
receipt, only through the canonical block that holds the transaction. Such answers stay true
when the head moves, so their scope is that block: a client re-reading a balance at a fixed
block, or an indexer walking old blocks and receipts, is answered from memory across heads.
A reorg that replaces the block changes the canonical hash and so the scope: nothing is
served about a block that is no longer where the question points.

Everything else is scoped to the head hash, which changes with every block and every reorg:
the tags (``latest``, ``safe``, ...), a block or transaction not found (it may arrive with
the next head), and methods that name no block.
"""

from __future__ import annotations

from typing import Any

from rpc.backend import ReplicaBackend
from rpc.blockref import block_ref
from rpc.blockwait import BLOCK_PARAM
from rpc.params import ArgumentError, hash32

CANONICAL = b"c"
SIDE = b"s"
"""Suffixes of a block's scope: the same block answers ``requireCanonical`` differently on a side chain."""


def answer_scope(backend: ReplicaBackend, method: str, params: Any, head: bytes) -> bytes:
    """The scope of ``method(params)``'s answer: a block's hash and canonical mark, or ``head``."""
    if not isinstance(params, list):
        return head
    position = BLOCK_PARAM.get(method)
    if position is not None:
        return _named_block(backend, params, position) or head
    if method == "eth_getTransactionReceipt":
        return _holding_block(backend, params) or head
    return head


def _named_block(backend: ReplicaBackend, params: list[Any], position: int) -> bytes | None:
    """The block a block parameter names by number or hash, if this replica holds it."""
    if len(params) <= position:
        return None  # the default block is "latest"
    try:
        ref = block_ref(params[position])
    except ArgumentError:
        return None  # the handler refuses it, and errors are not cached
    if isinstance(ref.number, int):
        canonical = backend.canonical_hash(ref.number)
        return None if canonical is None else canonical + CANONICAL
    if ref.block_hash is None:
        return None  # a tag: it moves with the head
    header = backend.header_by_hash(ref.block_hash)
    if header is None:
        return None
    return header.hash + (CANONICAL if backend.is_canonical(header) else SIDE)


def _holding_block(backend: ReplicaBackend, params: list[Any]) -> bytes | None:
    """The canonical block holding the transaction a hash parameter names."""
    try:
        location = backend.transaction_location(hash32(params[0])) if params else None
    except ArgumentError:
        return None
    return None if location is None else location[0].hash + CANONICAL
