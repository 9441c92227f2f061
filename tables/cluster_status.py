"""The cluster status table: every replica's latest row, readable by every replica of the cluster.

A Faust ``GlobalTable`` whose changelog is the cluster-wide, compacted topic
``TopicNames.replica_status`` (every replica is its own consumer group, so each
one reads the whole changelog). Each replica writes only its own key, its
replica id, every ``STATUS_INTERVAL`` seconds (``agents.publish_status``); what a row
holds and how rows are read is ``replica.status``.

Faust's recovery reads a changelog only up to the broker's ListOffsets
"latest", which Tansu answers short of the end, so a restarted replica may
recover all but the last rows. The global table's standby reader then goes on
to the end, and rows are rewritten every interval anyway; ``check_recovery``
logs how far a recovery read and whether the broker made it stop short.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.tables.globaltable import GlobalTable
from faust.types import TP

from broker import clients
from cluster.settings import Settings
from cluster.topics import TopicNames

log = logging.getLogger("ethercattle.status")


class SharedGlobalTable(GlobalTable):
    """A GlobalTable whose changelog is a topic shared by several apps (one per replica).

    Faust's assignor looks a global table's changelog up by the default name
    (``{app id}-{table}-changelog``) even when the table was given its own
    changelog topic; the lookup fails inside the consumer's rebalance and the
    worker waits forever for an assignment. The name is the topic's.
    """

    def _changelog_topic_name(self) -> str:
        if self._changelog_topic is not None:
            return self._changelog_topic.get_topic_name()
        return super()._changelog_topic_name()


def shared_global_table(app: faust.App, name: str, topic: faust.TopicT, **options: Any) -> SharedGlobalTable:
    """A global table over ``topic``, a compacted changelog that several apps (replicas, emitter workers) share.

    Its rows are written outside any stream (a timer, a service), so keys are
    partitioned by the table, and every record is applied as it comes.
    """
    table = SharedGlobalTable(
        app,
        name=name,
        default=None,
        partitions=1,
        changelog_topic=topic,
        beacon=app.tables.beacon,
        is_global=True,
        standby_buffer_size=1,  # as app.GlobalTable: apply other replicas' rows as they come
        recovery_buffer_size=1,  # Faust's advice for global tables read by several apps
        use_partitioner=True,  # rows are written outside any stream
        **options,
    )
    app.tables.add(table)
    return table


def cluster_status_table(app: faust.App, settings: Settings) -> SharedGlobalTable:
    """The cluster status table of ``app``; logs after each recovery how far it read."""
    names = TopicNames(settings.cluster)
    topic = app.topic(
        names.replica_status,
        key_serializer="json",
        value_serializer="json",
        partitions=1,
        compacting=True,
        acks=False,  # as Faust's own changelogs: read by the table's recovery and standby reader, never committed
    )
    table = shared_global_table(
        app, "replica-status", topic, help="Every replica's latest status row, keyed by replica id",
        store="memory://status",  # rows are rewritten every interval; a persisted offset would not survive a broker that lost the changelog (Faust's ConsistencyError); a bare "memory://" is falsy to Faust, which then used rocksdb
    )
    background: set[asyncio.Future[None]] = set()

    @table.on_recover
    async def on_recovered() -> None:
        """Check the recovery in the background (Faust waits for this callback before the worker is ready)."""
        task = asyncio.ensure_future(check_recovery(app, table, settings))
        background.add(task)
        task.add_done_callback(background.discard)

    return table


async def changelog_end(bootstrap_servers: list[str], topic: str) -> tuple[int, int] | None:
    """(ListOffsets "latest", the high watermark of a fetch) of a one-partition changelog, asked together.

    On Apache Kafka both agree; Tansu answers ListOffsets short of the end when
    the last batch held several records, and Faust's recovery trusts ListOffsets.
    """
    consumer = clients.reader(bootstrap_servers, fetch_max_wait_ms=50)
    try:
        await consumer.start()
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        listed = (await consumer.end_offsets([partition]))[partition]
        consumer.seek(partition, max(listed - 1, 0))
        await consumer.getmany(partition, timeout_ms=500)
        return listed, max(listed, consumer.highwater(partition) or 0)
    except Exception as exc:  # the broker may be away; the next recovery checks again
        log.debug("could not read the end of %s (%r)", topic, exc)
        return None
    finally:
        await consumer.stop()


async def check_recovery(app: faust.App, table: SharedGlobalTable, settings: Settings) -> None:
    """After Faust's recovery of the table, say how far it read and whether the broker made it stop short.

    Faust reads a changelog up to ListOffsets "latest" minus one. Where the
    broker answers that short of the log's end (Tansu), a recovery misses the
    last rows; the table's standby reader goes on to the end and every replica
    rewrites its row each interval, so the rows come back. This logs it, so it
    is never silent.
    """
    topic = TopicNames(settings.cluster).replica_status
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]  # TableManager's, not on its interface
    read_to = recovery.active_highwaters.get(TP(topic, 0))
    ends = await changelog_end(settings.bootstrap_servers, topic)
    if ends is None or read_to is None:
        return
    listed, end = ends
    if end > listed:
        log.warning(
            "status table recovered %s up to offset %d, but the broker answers ListOffsets %d while the log ends at %d: "
            "a recovery stops up to %d record(s) short (Tansu does this). The standby reader continues to the end and "
            "replicas rewrite their rows every %.1fs, so the table completes; %d rows now.",
            topic, read_to, listed, end, end - listed, settings.status_interval, len(table),
        )
    else:
        log.info("status table recovered %s up to offset %d (log end %d, ListOffsets agrees): %d rows",
                 topic, read_to, end, len(table))
