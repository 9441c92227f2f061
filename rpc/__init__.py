"""The replica's Ethereum JSON-RPC: geth-compatible reads over a read-only LevelDB view.

Public API:

- ``RpcService(db, *, limits, sync_status, readiness, tx_sink, extra_methods)``: the
  service over a replica's database; ``invalidate()`` after each applied write;
  ``handle_body(bytes)`` answers a request body.
- ``make_handler(service)``: its aiohttp handler; ``make_app(service)``: a bare aiohttp
  application serving it (the master, tests).
- ``RpcLimits``: resource limits; ``SyncProgress``/``SyncStatus``, ``Readiness`` and
  ``TransactionSink``: the hooks the replica provides.

Modules: ``dispatch`` (JSON-RPC framing), ``http`` (the aiohttp handler),
``errors`` (the one error table), ``params``/``blockref`` (argument decoding with
geth's messages), ``backend`` (chain reads and caches), ``statedb`` (trie reads and
proofs), ``format`` (JSON shapes), one module per namespace (``web3``, ``net``,
``chaininfo``, ``blocks``, ``transactions``, ``state``, ``execution``, ``fees``,
``logs``, ``txpool``, ``submit``, ``submitsync``, ``headers``, ``capabilities``,
``storagevalues``, ``simulate``), ``callargs``/``evm``/``evmhooks`` beneath
``execution``, ``simblock``/``simstate`` beneath ``simulate`` (one simulated block;
its state class with ERC-7528 transfer logs), ``subscriptions`` (eth_subscribe over
WebSockets), ``cors`` (which browser origins may call), and the replica worker's web
endpoints: ``views`` (``POST /`` and WebSockets) and ``pages`` (``/healthz``,
``/readyz``, ``/metrics``, ``/status``).
"""

from chain.head import SyncProgress
from rpc.backend import NotSyncing, Readiness, SyncStatus, TransactionSink
from rpc.http import make_app, make_handler
from rpc.limits import RpcLimits
from rpc.service import RpcService

__all__ = [
    "NotSyncing",
    "Readiness",
    "RpcLimits",
    "RpcService",
    "SyncProgress",
    "SyncStatus",
    "TransactionSink",
    "make_app",
    "make_handler",
]
