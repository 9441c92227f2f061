"""eth_getHeaderByNumber / eth_getHeaderByHash: a block's header without its bodies (geth's ``RPCMarshalHeader``).

Light clients and indexers that only need the header skip decoding and sending the
transactions; the answer is null for a block this replica does not hold, as geth.
"""

from __future__ import annotations

from eth.abc import BlockHeaderAPI

from rpc import params as p
from rpc.backend import ReplicaBackend
from rpc.blockref import BlockNumber, block_number
from rpc.dispatch import Method, MethodTable
from rpc.format import JSON, header_json


def _header(header: BlockHeaderAPI | None) -> JSON | None:
    return None if header is None else dict(sorted(header_json(header).items()))


def eth_get_header_by_number(backend: ReplicaBackend, number: BlockNumber) -> JSON | None:
    return _header(backend.resolve_number(number))


def eth_get_header_by_hash(backend: ReplicaBackend, block_hash: bytes) -> JSON | None:
    return _header(backend.header_by_hash(block_hash))


METHODS: MethodTable = {
    "eth_getHeaderByNumber": Method(eth_get_header_by_number, (p.required(block_number),)),
    "eth_getHeaderByHash": Method(eth_get_header_by_hash, (p.required(p.hash32),)),
}
