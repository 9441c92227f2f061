"""The one Faust app of a replica worker: ``faust -A pipeline worker --web-port PORT``.

Agents, tables and web views register on it by decorator and are found by
``autodiscover``; this module imports none of them. Each replica is its own
consumer group (the app id names the cluster and the replica), so every replica
reads the whole CDC log.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import faust

from pipeline import transport
from pipeline.autocreate import forbid_topic_auto_creation
from pipeline.logs import quiet_kafka_client_repeats
from pipeline.reach import ensure_topics_when_reachable
from pipeline.settings import load_settings
from pipeline.topics import TopicNames

settings = load_settings()
replica_id = settings.require_replica_id()
names = TopicNames(settings.cluster)

transport.install(settings.fetch_max_wait_ms)
forbid_topic_auto_creation()
quiet_kafka_client_repeats()
(settings.datadir / "faust").mkdir(parents=True, exist_ok=True)



class ReplicaApp(faust.App):
    """Faust's App, but a module that fails to import stops the worker.

    Faust's autodiscovery only logs a warning when a module raises on import,
    and the worker then starts without that module's agents or views: a
    replica that serves nothing while looking alive. Import them strictly first.
    """

    def discover(self, *extra_modules: str, **kwargs: Any) -> None:
        for package in self.conf.autodiscover:  # type: ignore[union-attr]
            module = importlib.import_module(package)
            for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{package}."):
                importlib.import_module(info.name)
        super().discover(*extra_modules, **kwargs)

    async def on_first_start(self) -> None:
        """Create the cluster's topics before any consumer subscribes.

        A subscription to a missing topic makes the broker auto-create it with
        its default partition count (Tansu: 4), and a CDC topic of several
        partitions would split the ordered log. A broker not reachable yet is
        waited for, one line per attempt, so a cluster starts in any order.
        """
        await ensure_topics_when_reachable(settings)
        await super().on_first_start()


app = ReplicaApp(
    f"ethercattle-{settings.cluster}-{replica_id}",
    broker=settings.broker,
    autodiscover=["agents", "tables", "rpc"],
    origin="pipeline",
    datadir=str(settings.datadir / "faust"),
    store="rocksdb://",
    topic_partitions=1,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=settings.broker_session_timeout,
    broker_heartbeat_interval=settings.broker_heartbeat_interval,
    broker_rebalance_timeout=settings.broker_rebalance_timeout,
    broker_max_poll_interval=settings.broker_max_poll_interval,
    producer_max_request_size=settings.max_message_bytes + 4096,
    consumer_max_fetch_size=max(settings.max_message_bytes * 4, 4 * 1024 * 1024),
    stream_buffer_maxsize=4 * settings.apply_batch_messages,
    web_stats_enabled=True,
    web_bind=settings.web_bind,  # Faust's default is every interface, whatever --web-host says
)

# The CDC topic: Faust neither tracks nor commits its offsets (acks=False); the
# replica stores its offset with its data and seeks there on assignment.
cdc_topic = app.topic(names.cdc, value_type=bytes, value_serializer="raw", key_serializer="raw", acks=False, partitions=1)
