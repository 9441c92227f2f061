"""This replica's status timers: its row in the cluster table, the chart's samples, the log's tail.

Every ``STATUS_INTERVAL`` seconds a timer writes this replica's row (head,
offset, lag, readiness, time) into the cluster status table and samples every
replica's row for the status page's chart. While the replica catches up, it
also peeks at the log's end for the master's newest heartbeat (eth_syncing's
highestBlock).
"""

from __future__ import annotations

import asyncio
import logging

import faust

from cluster.topics import TopicNames
from replica.readiness import broker_silence, sync_progress
from replica.state import ReplicaState
from replica.status import StatusBoard
from replica.tail import newest_heartbeat

log = logging.getLogger("ethercattle.status")


class StatusAgent:
    """Publishes this replica's row and follows the master's head while catching up."""

    def __init__(self, replica: ReplicaState, board: StatusBoard) -> None:
        self.replica = replica
        self.board = board
        self.settings = replica.settings
        self.cdc_topic = TopicNames(self.settings.cluster).cdc
        self._tail_task: asyncio.Task[None] | None = None

    async def publish_status(self) -> None:
        replica = self.replica
        sync_progress(replica)  # starts eth_syncing's startingBlock at the head the catch-up began from
        row = self.board.own_row()
        self.board.sample(row)
        silence = broker_silence(replica, row["time"])
        if silence is None or silence <= self.settings.max_broker_silence:  # without a broker, rows would only pile up
            try:
                self.board.publish(row)
                for departed in self.board.forget_departed(row["time"]):
                    log.info("status row of replica %s deleted: silent for over an hour", departed)
            except Exception as exc:  # the table refuses writes while Faust rebalances; the next round retries
                log.debug("status row not written (%r); next round retries", exc)
        self.board.sample_all()

    async def peek_log_tail(self) -> None:
        """While catching up, read the master's newest heartbeat from the log's end (never applied)."""
        replica = self.replica
        if replica.log_end is None or (replica.caught_up and (replica.lag or 0) <= self.settings.max_lag):
            return
        if self._tail_task is not None and not self._tail_task.done():
            return
        self._tail_task = asyncio.create_task(self._peek(replica.log_end))

    async def _peek(self, end: int) -> None:
        replica = self.replica
        try:
            beat = await newest_heartbeat(self.settings.bootstrap_servers, self.cdc_topic, replica.applier.auth, end)
        except Exception as exc:  # the broker may be away; this is only for eth_syncing's highestBlock
            log.debug("could not read the log's tail (%r)", exc)
            return
        if beat is not None and (replica.tail_heartbeat is None or beat.sequence >= replica.tail_heartbeat.sequence):
            replica.tail_heartbeat = beat


def register(app: faust.App, agent: StatusAgent) -> None:
    interval = agent.settings.status_interval
    app.timer(interval=interval, name="ethercattle.status.publish")(agent.publish_status)
    app.timer(interval=max(interval, 1.0), name="ethercattle.status.peek_log_tail")(agent.peek_log_tail)
