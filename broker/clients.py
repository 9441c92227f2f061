"""Settings into Kafka client options: the one place that translates them.

Every consumer, producer and admin client of the project, and the Faust app of a
replica worker, is made here from ``Settings`` (or, for the groupless readers that
tools and tests also use, from the bootstrap servers), so a broker option is set
in one place: the fetch wait that bounds delivery latency on brokers that do not
answer fetches early, the group timings, the producer's idempotence (on for
Apache Kafka, off for the local Tansu broker, which refuses InitProducerId). Every
client made here asks for metadata without topic auto-creation (``broker.autocreate``):
only our code creates a topic, with the layout the design needs.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from broker.autocreate import forbid_topic_auto_creation
from cluster.settings import Settings


def reader(bootstrap_servers: list[str], *, fetch_max_wait_ms: int = 100, **options: Any) -> AIOKafkaConsumer:
    """A consumer outside any group that never commits: it reads what it is assigned, where it seeks.

    Replicas read their cluster-wide topics whole (a group would share the
    partitions between them) and keep their positions themselves.
    """
    forbid_topic_auto_creation()
    return AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                            fetch_max_wait_ms=fetch_max_wait_ms, auto_offset_reset="earliest", **options)


def group_member(settings: Settings, group_id: str, client_id: str) -> AIOKafkaConsumer:
    """A consumer in ``group_id`` with the worker's group timings; it commits only when told."""
    forbid_topic_auto_creation()
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        session_timeout_ms=int(settings.broker_session_timeout * 1000),
        heartbeat_interval_ms=int(settings.broker_heartbeat_interval * 1000),
        rebalance_timeout_ms=int(settings.broker_rebalance_timeout * 1000),
        max_poll_interval_ms=int(settings.broker_max_poll_interval * 1000),
    )


def producer(settings: Settings, **options: Any) -> AIOKafkaProducer:
    """A producer that waits for every in-sync replica (``acks="all"``); idempotent where the broker allows."""
    forbid_topic_auto_creation()
    return AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                            enable_idempotence=settings.producer_idempotence, **options)


def admin(settings: Settings) -> AIOKafkaAdminClient:
    """An admin client whose ``describe_topics`` never creates the topics it names."""
    forbid_topic_auto_creation()
    return AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)


def app_options(settings: Settings) -> dict[str, Any]:
    """The Faust app's broker options for a replica worker.

    Group timings are short (the local broker makes a join wait the whole
    rebalance timeout), messages may be as large as the master's, and the
    stream buffer holds a few apply groups.
    """
    return {
        "broker": settings.broker,
        "topic_partitions": 1,
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": settings.broker_session_timeout,
        "broker_heartbeat_interval": settings.broker_heartbeat_interval,
        "broker_rebalance_timeout": settings.broker_rebalance_timeout,
        "broker_max_poll_interval": settings.broker_max_poll_interval,
        "producer_max_request_size": settings.max_message_bytes + 4096,
        "consumer_max_fetch_size": max(settings.max_message_bytes * 4, 4 * 1024 * 1024),
        "stream_buffer_maxsize": 4 * settings.apply_batch_messages,
        # The worker's tables are views of changelogs a broker may lose; Faust's recovery then finds its
        # in-process offsets past the new changelog's end and would crash the worker (ConsistencyError).
        # The tables read the new changelogs from their start instead (``tables.changelogs``).
        "recovery_consistency_check": False,
    }
