"""The txpool namespace over the cluster's pending transactions (the replica's pending view).

A replica keeps no pool of its own: what it lists is what the transaction topic
carries and no applied block includes yet. As in geth, a transaction is
"pending" when its nonce follows the sender's account nonce without a gap, and
"queued" after a gap; addresses are checksummed, nonces are decimal strings.
"""

from __future__ import annotations

from typing import Any

from eth.abc import SignedTransactionAPI
from eth_utils import to_checksum_address

from rpc import params as p
from rpc.backend import ReplicaBackend
from rpc.dispatch import Method, MethodTable
from rpc.format import fee_caps, quantity, transaction_json

Pools = dict[str, dict[bytes, list[SignedTransactionAPI]]]
"""{"pending"|"queued": {sender: [transactions by nonce]}}"""


def _pools(backend: ReplicaBackend, only: bytes | None = None) -> Pools:
    pools: Pools = {"pending": {}, "queued": {}}
    entries = backend.pending.transactions()
    if not entries:
        return pools
    root = backend.head().state_root
    nonces: dict[bytes, tuple[int, int]] = {}
    for tx, sender in entries:
        if only is not None and sender != only:
            continue
        if sender not in nonces:
            state_nonce = backend.state.account(root, sender).nonce
            nonces[sender] = (state_nonce, backend.pending.next_nonce(sender, state_nonce))
        state_nonce, next_nonce = nonces[sender]
        if tx.nonce < state_nonce:
            continue  # mined or replaced; the view drops it on its next prune
        pool = "pending" if tx.nonce < next_nonce else "queued"
        pools[pool].setdefault(sender, []).append(tx)
    return pools


def txpool_status(backend: ReplicaBackend) -> dict[str, str]:
    pools = _pools(backend)
    return {name: quantity(sum(len(txs) for txs in pools[name].values())) for name in ("pending", "queued")}


def _by_nonce(txs: list[SignedTransactionAPI], sender: bytes) -> dict[str, Any]:
    # Replacements share a nonce: the newest (last listed) is shown, as a pool holds one per nonce.
    return {str(tx.nonce): transaction_json(tx, sender, None, None) for tx in txs}


def txpool_content(backend: ReplicaBackend) -> dict[str, Any]:
    pools = _pools(backend)
    return {name: {to_checksum_address(sender): _by_nonce(txs, sender) for sender, txs in pools[name].items()}
            for name in ("pending", "queued")}


def txpool_content_from(backend: ReplicaBackend, address: bytes) -> dict[str, Any]:
    pools = _pools(backend, only=address)
    return {name: _by_nonce(pools[name].get(address, []), address) for name in ("pending", "queued")}


def _summary(tx: SignedTransactionAPI) -> str:
    """geth's inspect line: "to: value wei + gas gas × price wei"."""
    fee_cap, _ = fee_caps(tx)
    to = to_checksum_address(tx.to) if tx.to else "contract creation"
    return f"{to}: {tx.value} wei + {tx.gas} gas × {fee_cap} wei"


def txpool_inspect(backend: ReplicaBackend) -> dict[str, Any]:
    pools = _pools(backend)
    return {name: {to_checksum_address(sender): {str(tx.nonce): _summary(tx) for tx in txs}
                   for sender, txs in pools[name].items()}
            for name in ("pending", "queued")}


METHODS: MethodTable = {
    "txpool_status": Method(txpool_status),
    "txpool_content": Method(txpool_content),
    "txpool_contentFrom": Method(txpool_content_from, (p.required(p.address),)),
    "txpool_inspect": Method(txpool_inspect),
}
