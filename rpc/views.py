"""The replica worker's JSON-RPC endpoint: ``POST /`` on its Faust web port.

The service reads the replica's LevelDB through the read-only view, answers a
not-ready error until the replica is ready, and drops its head-derived caches
after every group the apply agent commits. The filter methods (``rpc.filters``)
read and write the cluster's filter topic through ``replica.filters``; a ``GET /``
that asks for a WebSocket is upgraded (``rpc.subscriptions``) on the same port.
"""

from __future__ import annotations

import functools
from typing import Any, Awaitable, Callable

from aiohttp import web as aiohttp_web
from faust import web

from pipeline.worker import app, settings
from replica.filters import filter_store
from replica.metrics import export, record_rpc
from replica.pending import pending_pool
from replica.state import replica_state
from replica.txsink import transaction_sink
from rpc.filters import FilterLimits, Filters
from rpc.limits import RpcLimits
from rpc.replica_hooks import ReadinessHook, ReplicaSyncStatus
from rpc.service import RpcService
from rpc.subscriptions import BackendChain, Hub


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
        offload_threads=settings.rpc_threads,
    )
    service = RpcService(replica.db, limits=limits, readiness=ReadinessHook(replica), sync_status=ReplicaSyncStatus(replica),
                         tx_sink=transaction_sink(), pending=pending_pool(), extra_methods=[filters().methods()],
                         on_call=record_rpc)
    replica.listeners.append(lambda outcome: service.invalidate())
    return service


@functools.cache
def filters() -> Filters:
    """The cluster's shared filters, over this replica's view of the filter topic."""
    limits = FilterLimits(timeout=settings.filter_timeout, max_filters=settings.filter_max,
                          max_results=settings.filter_max_results)
    return Filters(filter_store(), limits)


@app.page("/")
class JsonRpc(web.View):
    """Ethereum JSON-RPC 2.0: single requests, batches and notifications."""

    async def post(self, request: web.Request) -> web.Response:
        return await rpc_service().handle_http(request)  # type: ignore[arg-type, return-value]


@functools.cache
def subscription_hub() -> Hub:
    """eth_subscribe's hub, woken by the apply agent after each group it writes."""
    hub = Hub(BackendChain(rpc_service().backend), filter_store().transactions,
              max_subscriptions=settings.ws_max_subscriptions, queue_size=settings.ws_send_queue)
    replica_state().listeners.append(hub.applied)
    export([
        ("ethercattle_ws_connections", "gauge", "WebSocket clients connected", lambda: len(hub.connections)),
        ("ethercattle_ws_slow_consumers_dropped", "counter", "WebSocket clients dropped for not reading (WS_SEND_QUEUE)",
         lambda: hub.dropped_slow),
    ])
    return hub


@app.task
async def feed_subscriptions() -> None:
    await subscription_hub().run()


@aiohttp_web.middleware
async def websocket_upgrade(request: aiohttp_web.Request,
                            handler: Callable[[aiohttp_web.Request], Awaitable[Any]]) -> Any:
    """``GET /`` asking for a WebSocket becomes a JSON-RPC WebSocket (eth_subscribe); anything else
    goes on to its route (Faust's own ``GET /`` index among them)."""
    if (request.method == "GET" and request.path == "/"
            and request.headers.get("Upgrade", "").lower() == "websocket"):
        service = rpc_service()
        return await subscription_hub().serve(request, service.handle_body, service.backend.check_ready)
    return await handler(request)


# Faust's driver builds its aiohttp application when the app's web is first used
# (the pages above already did); a middleware runs before routing, so the upgrade
# shares the JSON-RPC path and port without replacing Faust's GET / index.
app.web.web_app.middlewares.append(websocket_upgrade)  # type: ignore[attr-defined]
