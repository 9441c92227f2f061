"""The replica worker's JSON-RPC endpoint: ``POST /`` on its Faust web port.

The service reads the replica's LevelDB through the read-only view, answers a
not-ready error until the replica is ready, and drops its head-derived caches
after every group the apply agent commits.
"""

from __future__ import annotations

import functools

from faust import web

from pipeline.worker import app, settings
from replica.readiness import not_ready_reason
from replica.pending import pending_pool
from replica.state import replica_state
from replica.txsink import transaction_sink
from rpc.limits import RpcLimits
from rpc.service import RpcService


@functools.cache
def rpc_service() -> RpcService:
    replica = replica_state()
    limits = RpcLimits(
        max_body_bytes=settings.rpc_max_body_bytes,
        max_batch_requests=settings.rpc_max_batch_requests,
        logs_max_block_range=settings.rpc_logs_max_block_range,
        logs_max_results=settings.rpc_logs_max_results,
        call_gas_cap=settings.rpc_call_gas_cap,
        call_timeout_seconds=settings.rpc_call_timeout,
    )
    service = RpcService(replica.db, limits=limits, readiness=lambda: not_ready_reason(replica), tx_sink=transaction_sink(),
                         pending=pending_pool())
    replica.listeners.append(lambda outcome: service.invalidate())
    return service


@app.page("/")
class JsonRpc(web.View):
    """Ethereum JSON-RPC 2.0: single requests, batches and notifications."""

    async def post(self, request: web.Request) -> web.Response:
        return await rpc_service().handle_http(request)  # type: ignore[arg-type, return-value]
