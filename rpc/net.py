"""The net namespace: a replica has no peers and never listens for them."""

from __future__ import annotations

from rpc.backend import ReplicaBackend
from rpc.dispatch import Method, MethodTable


def net_version(backend: ReplicaBackend) -> str:
    """The network id in decimal, as geth; ours is the chain id."""
    return str(backend.chain_id)


def net_listening(backend: ReplicaBackend) -> bool:
    return False


def net_peer_count(backend: ReplicaBackend) -> str:
    return "0x0"


METHODS: MethodTable = {
    "net_version": Method(net_version),
    "net_listening": Method(net_listening),
    "net_peerCount": Method(net_peer_count),
}
