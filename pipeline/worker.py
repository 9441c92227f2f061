"""The composition root of a replica worker: ``faust -A pipeline worker --web-port PORT``.

``create_app(settings)`` builds, once and explicitly, every piece a replica
worker runs (its state and LevelDB, the RPC service and its backend, the filter
store, the pending view, the transaction sink, the subscription hub, readiness,
metrics, the status board, the snapshotter, the emitter when configured) and
hands them to the Faust agents, tables, services and web views it registers on
the app. Nothing else builds these pieces, and nothing below imports the app.

Each replica is its own consumer group (the app id names the cluster and the
replica), so every replica reads the whole CDC log.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import faust

from agents import apply, publish_status, snapshots
from agents.apply import ApplyAgent
from agents.publish_status import StatusAgent
from broker import clients, transport
from broker.admin import cluster_topics
from broker.autocreate import forbid_topic_auto_creation
from broker.logs import quiet_kafka_client_repeats
from broker.metadata import space_metadata_requests
from broker.reach import ensure_topics_when_reachable
from broker.watch import TopicWatch
from cluster.settings import Settings
from cluster.topics import TopicNames, TopicSpec
from emitter.forwarder import EmitterMetrics
from emitter.service import EmitterService
from filters.methods import FilterLimits, Filters
from filters.reader import FilterReader
from filters.store import FilterStore
from pending.chainview import ChainView
from pending.pool import PendingPool
from pending.reader import PendingReader
from pending.sink import TopicSink
from replica.metrics import Bound, ReplicaMetrics
from replica.peers import PeerClusters
from replica.readiness import ApplyBacklog, ReadinessHook, ReplicaSyncStatus
from replica.state import ReplicaState
from replica.status import StatusBoard
from rpc import pages, views
from rpc.cors import BrowserAccess
from rpc.limits import RpcLimits
from rpc.service import RpcService
from rpc.subscriptions import BackendChain, Hub
from snapshot.service import Snapshotter
from tables.changelogs import on_rebase
from tables.cluster_status import cluster_status_table
from tables.emitted import EmittedTable


class ReplicaApp(faust.App):
    """Faust's App for one replica worker: its topics (``topic_specs``) exist before anyone subscribes."""

    def __init__(self, settings: Settings, topic_specs: list[TopicSpec], **options: Any) -> None:
        super().__init__(**options)
        self.settings = settings
        self.topic_specs = topic_specs

    async def on_first_start(self) -> None:
        """Create the cluster's topics before any consumer subscribes.

        A subscription to a missing topic makes the broker auto-create it with
        its default partition count (Tansu: 4), and a CDC topic of several
        partitions would split the ordered log. A broker not reachable yet is
        waited for, one line per attempt, so a cluster starts in any order.
        """
        await ensure_topics_when_reachable(self.settings, specs=self.topic_specs)
        await super().on_first_start()


@dataclass(frozen=True)
class Replica:
    """Every piece of one replica worker, as ``build_replica`` wired them."""

    settings: Settings
    state: ReplicaState
    metrics: ReplicaMetrics
    chain: ChainView
    pending: PendingPool
    filter_store: FilterStore
    sink: TopicSink
    rpc: RpcService
    hub: Hub


def rpc_limits(settings: Settings) -> RpcLimits:
    return RpcLimits(
        max_body_bytes=settings.rpc_max_body_bytes,
        max_batch_requests=settings.rpc_max_batch_requests,
        logs_max_block_range=settings.rpc_logs_max_block_range,
        logs_max_results=settings.rpc_logs_max_results,
        call_gas_cap=settings.rpc_call_gas_cap,
        call_timeout_seconds=settings.rpc_call_timeout,
        offload_threads=settings.rpc_threads,
        request_timeout_seconds=settings.rpc_request_timeout,
        request_gas_budget=settings.rpc_request_gas_budget,
        max_in_flight=settings.rpc_max_in_flight,
        max_broker_waiting=settings.rpc_max_broker_waiting,
        response_cache_bytes=settings.rpc_response_cache_bytes,
        block_wait_blocks=settings.rpc_block_wait_blocks,
        block_wait_seconds=settings.rpc_block_wait,
    )


def bounds(settings: Settings, state: ReplicaState, rpc: RpcService, filter_store: FilterStore, hub: Hub) -> list[Bound]:
    """The replica's structures that grow with what clients send, each with the limit that holds it."""
    caches = [Bound(name, "entries", partial(len, cache), cache.size) for name, cache in rpc.backend.caches().items()]
    index = filter_store.transactions
    return caches + [
        Bound("response cache", "bytes", lambda: rpc.responses.size, rpc.responses.max_bytes),
        Bound("filters", "entries", lambda: len(filter_store), settings.filter_max),
        Bound("filter transaction index, per partition", "entries", index.longest, 2 * index.max_per_partition),
        Bound("WebSocket clients", "entries", lambda: len(hub.connections), settings.ws_max_connections),
        Bound("crash log kinds", "entries", lambda: len(rpc.dispatcher.crashes), rpc.dispatcher.crashes.max_kinds),
        Bound("LevelDB block cache and memtables", "bytes", state.db.memory_usage, state.db.MEMORY_BOUND),
    ]


def build_replica(settings: Settings, app: faust.App) -> Replica:
    """The replica's pieces, wired to each other (the transaction sink produces with ``app``'s producer)."""
    names = TopicNames(settings.cluster)
    state = ReplicaState.open(settings)
    metrics = ReplicaMetrics(state)
    chain = ChainView(state.db)
    pending = PendingPool(settings.pending_ttl)
    filter_store = FilterStore()
    state.shared_views.update({"pending view": pending, "filter store": filter_store})

    async def produce(key: bytes, value: bytes) -> None:
        await app.producer.send_and_wait(names.transactions, key, value, None, None, None)

    sink = TopicSink(produce, pending, chain.decode, timeout=settings.rpc_broker_timeout)
    filters = Filters(filter_store, FilterLimits(timeout=settings.filter_timeout, max_filters=settings.filter_max,
                                                 max_results=settings.filter_max_results,
                                                 ack_timeout=settings.rpc_broker_timeout))
    rpc = RpcService(state.db, limits=rpc_limits(settings), readiness=ReadinessHook(state),
                     sync_status=ReplicaSyncStatus(state), tx_sink=sink, pending=pending,
                     extra_methods=[filters.methods()], on_call=metrics.record_rpc,
                     behind=ApplyBacklog(state, settings.max_lag // 4), writes_announced=True)
    state.listeners.append(lambda outcome: rpc.invalidate())
    hub = Hub(BackendChain(rpc.backend), filter_store.transactions,
              max_subscriptions=settings.ws_max_subscriptions, queue_size=settings.ws_send_queue,
              max_connections=settings.ws_max_connections)
    state.listeners.append(hub.applied)
    metrics.export([
        ("ethercattle_ws_connections", "gauge", "WebSocket clients connected", lambda: len(hub.connections)),
        ("ethercattle_ws_slow_consumers_dropped", "counter", "WebSocket clients dropped for not reading (WS_SEND_QUEUE)",
         lambda: hub.dropped_slow),
        ("ethercattle_rpc_shed", "counter", "HTTP JSON-RPC requests refused at once (RPC_MAX_IN_FLIGHT in flight)",
         lambda: rpc.admission.shed),
        ("ethercattle_rpc_in_flight", "gauge", "HTTP JSON-RPC requests being handled now (at most RPC_MAX_IN_FLIGHT)",
         lambda: rpc.admission.in_flight),
        ("ethercattle_rpc_broker_waiting", "gauge",
         "JSON-RPC calls waiting on the broker now (filters, sent transactions, pending nonces; at most RPC_MAX_IN_FLIGHT, apart from the requests in flight)",
         lambda: rpc.broker_wait.waiting),
        ("ethercattle_rpc_broker_waits_refused", "counter",
         "JSON-RPC calls refused at once (-32005) because RPC_MAX_IN_FLIGHT calls already waited on the broker",
         lambda: rpc.broker_wait.refused),
        ("ethercattle_rpc_cache_hits", "counter", "JSON-RPC answers served from the response cache", lambda: rpc.responses.hits),
        ("ethercattle_rpc_cache_misses", "counter", "cacheable JSON-RPC calls the response cache did not hold",
         lambda: rpc.responses.misses),
        ("ethercattle_rpc_cache_bytes", "gauge", "bytes held by the response cache (RPC_RESPONSE_CACHE_BYTES bounds it)",
         lambda: rpc.responses.size),
        ("ethercattle_rpc_block_waits", "counter", "JSON-RPC calls that waited for a block just past the head",
         lambda: rpc.block_wait.waited),
    ])
    metrics.export_bounds(bounds(settings, state, rpc, filter_store, hub))
    return Replica(settings, state, metrics, chain, pending, filter_store, sink, rpc, hub)


def create_app(settings: Settings) -> ReplicaApp:
    """A replica worker's Faust app for ``settings``, with every agent, table, service and view registered."""
    replica_id = settings.require_replica_id()
    names = TopicNames(settings.cluster)
    transport.install(settings.fetch_max_wait_ms)
    forbid_topic_auto_creation()
    space_metadata_requests()
    quiet_kafka_client_repeats()
    (settings.datadir / "faust").mkdir(parents=True, exist_ok=True)
    owned = names.emitter_specs(settings.emitter_name) if settings.emit_target_list else []
    app = ReplicaApp(
        settings,
        cluster_topics(settings) + owned,
        id=f"ethercattle-{settings.cluster}-{replica_id}",
        origin="pipeline",
        datadir=str(settings.datadir / "faust"),
        store="rocksdb://",
        web_stats_enabled=True,
        web_bind=settings.web_bind,  # Faust's default is every interface, whatever --web-host says
        **clients.app_options(settings),
    )
    replica = build_replica(settings, app)

    # The CDC topic: Faust neither tracks nor commits its offsets (acks=False); the
    # replica stores its offset with its data and seeks there on assignment.
    cdc = app.topic(names.cdc, value_type=bytes, value_serializer="raw", key_serializer="raw", acks=False, partitions=1)
    apply.register(app, cdc, ApplyAgent(replica.state, settings, names.cdc, lambda: app.consumer))
    board = StatusBoard(replica.state, cluster_status_table(app, settings), lambda: str(app.conf.canonical_url))
    replica.state.rebased.append(on_rebase(app, [names.replica_status] + [spec.name for spec in owned]))
    publish_status.register(app, StatusAgent(replica.state, board))
    app.service(PendingReader(settings, replica.pending, replica.chain, replica.state))  # type: ignore[arg-type]
    filter_reader = FilterReader(settings, replica.filter_store)
    replica.state.rebased.append(filter_reader.start_over)
    app.service(filter_reader)  # type: ignore[arg-type]
    topic_watch = TopicWatch(settings, needed=cluster_topics(settings), owned=owned)
    replica.state.rebased.append(topic_watch.check_now)
    app.service(topic_watch)  # type: ignore[arg-type]
    if settings.emit_target_list:
        async def dead_letter(key: bytes | None, value: bytes) -> None:
            await app.producer.send_and_wait(names.dead_letters, key, value, None, None, None)

        emitted = EmittedTable(app, settings)
        emitter = EmitterService(settings, emitted, dead_letter, EmitterMetrics(replica.metrics.registry))
        replica.state.rebased.append(emitter.start_over)
        app.service(emitter)  # type: ignore[arg-type]
    views.register(app, replica.rpc, replica.hub,
                   BrowserAccess.from_settings(settings.rpc_cors_domains, settings.ws_origins))
    pages.register(app, replica.state, replica.metrics, board, PeerClusters.from_settings(settings))
    snapshots.register(app, replica.state, Snapshotter(settings))
    return app
