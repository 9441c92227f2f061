"""This replica's status: its row in the cluster table, the chart's samples, the log's tail.

Every ``STATUS_INTERVAL`` seconds a timer writes this replica's row (head,
offset, lag, readiness, time) into the cluster status table and samples every
replica's row for the status page's chart. While the replica catches up, it
also peeks at the log's end for the master's newest heartbeat (eth_syncing's
highestBlock).
"""

from __future__ import annotations

import asyncio
import logging

from pipeline.worker import app, names, replica_id, settings
from replica import metrics
from replica.history import Sample
from replica.readiness import broker_silence, sync_progress
from replica.state import ReplicaState, replica_state
from replica.tail import newest_heartbeat
from tables import status

log = logging.getLogger("ethercattle.status")


@app.task
async def start_metrics() -> None:
    """Export this replica on the metrics registry before the first group is applied."""
    metrics.watch(replica_state())


@app.timer(interval=settings.status_interval)
async def publish_status() -> None:
    replica = replica_state()
    sync_progress(replica)  # starts eth_syncing's startingBlock at the head the catch-up began from
    row = status.status_row(replica)
    status.history.add(replica_id, Sample(row["time"], row["head"], row["lag"], row["ready"]))
    silence = broker_silence(replica, row["time"])
    if silence is None or silence <= settings.max_broker_silence:  # without a broker, rows would only pile up
        try:
            status.publish(row)
        except Exception as exc:  # the table refuses writes while Faust rebalances; the next round retries
            log.debug("status row not written (%r); next round retries", exc)
    status.sample_all()


_tail_task: asyncio.Task[None] | None = None


@app.timer(interval=max(settings.status_interval, 1.0))
async def peek_log_tail() -> None:
    """While catching up, read the master's newest heartbeat from the log's end (never applied)."""
    global _tail_task
    replica = replica_state()
    if replica.log_end is None or (replica.caught_up and (replica.lag or 0) <= settings.max_lag):
        return
    if _tail_task is not None and not _tail_task.done():
        return
    _tail_task = asyncio.create_task(_peek(replica, replica.log_end))


async def _peek(replica: ReplicaState, end: int) -> None:
    try:
        beat = await newest_heartbeat(settings.bootstrap_servers, names.cdc, replica.applier.auth, end)
    except Exception as exc:  # the broker may be away; this is only for eth_syncing's highestBlock
        log.debug("could not read the log's tail (%r)", exc)
        return
    if beat is not None and (replica.tail_heartbeat is None or beat.sequence >= replica.tail_heartbeat.sequence):
        replica.tail_heartbeat = beat
