"""eth_capabilities: what history this replica can serve, for routers in front of many nodes.

A replica holds the master's whole database (every snapshot is a full copy), so
every resource reaches back to genesis and nothing is pruned: each reports
``oldestBlock`` 0 and no delete strategy. ``head`` is the replica's canonical head.
"""

from __future__ import annotations

from rpc.backend import ReplicaBackend
from rpc.dispatch import Method, MethodTable
from rpc.format import JSON, data, quantity

RESOURCES = ("state", "tx", "logs", "receipts", "blocks", "stateproofs")
"""The resource kinds of the execution-apis ``EthCapabilities`` schema."""


def eth_capabilities(backend: ReplicaBackend) -> JSON:
    head = backend.head()
    capabilities: JSON = {"head": {"number": quantity(head.block_number), "hash": data(head.hash)}}
    for resource in RESOURCES:
        capabilities[resource] = {"disabled": False, "oldestBlock": quantity(0)}
    return capabilities


METHODS: MethodTable = {
    "eth_capabilities": Method(eth_capabilities),
}
