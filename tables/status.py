"""The cluster status table: every replica's latest row, readable by every replica of the cluster.

A Faust ``GlobalTable`` whose changelog is the cluster-wide, compacted topic
``TopicNames.replica_status`` (every replica is its own consumer group, so each
one reads the whole changelog). Each replica writes only its own key, its
replica id, every ``STATUS_INTERVAL`` seconds (``agents.status``); a row is::

    {"replica": id, "cluster": name, "head": number, "head_hash": hex, "head_time": unix time,
     "master_head": number, "sequence": n, "offset": next offset, "log_end": offset,
     "lag": messages, "ready": bool, "reason": why not ready | None, "halted": reason | None,
     "time": unix time, "web": url}

A replica that stops publishing keeps its last row; ``rows()`` marks it stale.

Faust's recovery reads a changelog only up to the broker's ListOffsets
"latest", which Tansu answers short of the end, so a restarted replica may
recover all but the last rows. The global table's standby reader then goes on
to the end, and rows are rewritten every interval anyway; ``check_recovery``
logs how far a recovery read and whether the broker made it stop short.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables.globaltable import GlobalTable
from faust.types import TP

from pipeline.worker import app, names, replica_id, settings
from replica.history import History, sample_from_row
from replica.readiness import head, highest_block, not_ready_reason
from replica.state import ReplicaState

log = logging.getLogger("ethercattle.status")

STALE_INTERVALS = 3
"""A row older than this many intervals belongs to a replica that stopped publishing."""

status_topic = app.topic(
    names.replica_status,
    key_serializer="json",
    value_serializer="json",
    partitions=1,
    compacting=True,
    acks=False,  # as Faust's own changelogs: read by the table's recovery and standby reader, never committed
)


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


cluster_status = SharedGlobalTable(
    app,
    name="replica-status",
    default=None,
    partitions=1,
    changelog_topic=status_topic,
    beacon=app.tables.beacon,
    is_global=True,
    standby_buffer_size=1,  # as app.GlobalTable: apply other replicas' rows as they come
    recovery_buffer_size=1,  # Faust's advice for global tables read by several apps
    use_partitioner=True,  # rows are written by a timer, outside any stream
    help="Every replica's latest status row, keyed by replica id",
    store="memory://",  # rows are rewritten every interval; a persisted offset would not survive a broker that lost the changelog (Faust's ConsistencyError)
)
app.tables.add(cluster_status)

history = History(settings.status_interval)
"""Samples of every replica's rows over the last hour, for the status page's chart."""


def status_row(replica: ReplicaState, now: float | None = None) -> dict[str, Any]:
    """This replica's row of the cluster status table."""
    now = time.time() if now is None else now
    current = head(replica)
    reason = not_ready_reason(replica, now)
    master_head = highest_block(replica)
    if master_head is not None and current is not None:
        master_head = max(master_head, current.number)  # the master holds at least what was applied here
    return {
        "replica": replica_id,
        "cluster": settings.cluster,
        "head": None if current is None else current.number,
        "head_hash": None if current is None else "0x" + current.hash.hex(),
        "head_time": None if current is None else current.timestamp,
        "master_head": master_head,
        "sequence": replica.applier.position.sequence,
        "offset": replica.applier.position.next_offset,
        "log_end": replica.log_end,
        "lag": replica.lag,
        "ready": reason is None,
        "reason": reason,
        "halted": None if replica.halted is None else replica.halted.reason,
        "time": now,
        "web": str(app.conf.canonical_url),
    }


def rows(now: float | None = None) -> list[dict[str, Any]]:
    """Every replica's row, sorted by replica id, each marked ``stale`` when it stopped publishing."""
    now = time.time() if now is None else now
    result = []
    for key, row in list(cluster_status.items()):
        if not isinstance(row, dict) or "time" not in row:
            continue
        age = max(now - float(row["time"]), 0.0)
        result.append({**row, "replica": row.get("replica", key), "age": round(age, 3),
                       "stale": age > STALE_INTERVALS * settings.status_interval})
    return sorted(result, key=lambda row: str(row["replica"]))


def publish(row: dict[str, Any]) -> None:
    """Write this replica's row (the timer's job; never another replica's key)."""
    cluster_status[row["replica"]] = row


def sample_all() -> None:
    """Append every replica's newest row to the chart history."""
    for row in rows():
        history.add(str(row["replica"]), sample_from_row(row))
    history.prune(time.time())


def changelog_tp() -> TP:
    return TP(names.replica_status, 0)


async def changelog_end() -> tuple[int, int] | None:
    """(ListOffsets "latest", the high watermark of a fetch) of the changelog, asked together.

    On Apache Kafka both agree; Tansu answers ListOffsets short of the end when
    the last batch held several records, and Faust's recovery trusts ListOffsets.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=50)
    try:
        await consumer.start()
        partition = TopicPartition(names.replica_status, 0)
        consumer.assign([partition])
        listed = (await consumer.end_offsets([partition]))[partition]
        consumer.seek(partition, max(listed - 1, 0))
        await consumer.getmany(partition, timeout_ms=500)
        return listed, max(listed, consumer.highwater(partition) or 0)
    except Exception as exc:  # the broker may be away; the next recovery checks again
        log.debug("could not read the end of %s (%r)", names.replica_status, exc)
        return None
    finally:
        await consumer.stop()


@cluster_status.on_recover
async def on_recovered() -> None:
    """Check the recovery in the background (Faust waits for this callback before the worker is ready)."""
    task = asyncio.ensure_future(check_recovery())
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Future[None]] = set()


async def check_recovery() -> None:
    """After Faust's recovery of the table, say how far it read and whether the broker made it stop short.

    Faust reads a changelog up to ListOffsets "latest" minus one. Where the
    broker answers that short of the log's end (Tansu), a recovery misses the
    last rows; the table's standby reader goes on to the end and every replica
    rewrites its row each interval, so the rows come back. This logs it, so it
    is never silent.
    """
    tp = changelog_tp()
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]  # TableManager's, not on its interface
    read_to = recovery.active_highwaters.get(tp)
    ends = await changelog_end()
    if ends is None or read_to is None:
        return
    listed, end = ends
    if end > listed:
        log.warning(
            "status table recovered %s up to offset %d, but the broker answers ListOffsets %d while the log ends at %d: "
            "a recovery stops up to %d record(s) short (Tansu does this). The standby reader continues to the end and "
            "replicas rewrite their rows every %.1fs, so the table completes; %d rows now.",
            tp.topic, read_to, listed, end, end - listed, settings.status_interval, len(cluster_status),
        )
    else:
        log.info("status table recovered %s up to offset %d (log end %d, ListOffsets agrees): %d rows",
                 tp.topic, read_to, end, len(cluster_status))
