"""The shared pending view: every replica reads the whole transaction topic.

A plain aiokafka consumer without a group (like a replica's CDC reading, each
replica reads everything; unlike it, nothing is stored): on start it seeks to
the records of the last ``PENDING_TTL`` seconds, then follows the topic. It
also reads the dead-letter topic, so a transaction an emitter gave up on leaves
the view at once instead of holding its sender's pending nonce for the TTL.

Why not a Faust agent: the view is rebuilt from the topic's recent past at each
start (offsets committed by a group would skip it), and an agent costs about
300 us per message where the raw consumer costs a few.

After each group the apply agent writes, entries that the head settled
(included, or their nonce used) are pruned, and transactions a reorg took out of
the chain are added back; a timer drops expired ones.
"""

from __future__ import annotations

import asyncio
import logging
import time

import mode
from aiokafka import AIOKafkaConsumer, TopicPartition

from cluster import boundedjson
from cluster.settings import Settings
from cluster.topics import TopicNames
from pending.chainview import ChainView
from pending.pool import PendingPool, parse
from replica.catchup import SharedCatchUp, holds_fetched_end, open_reader, read_wait_ms, seek_since
from pending.reorged import ReorgWatch
from replica.state import ReplicaState

log = logging.getLogger("ethercattle.pending")


class PendingReader(mode.Service):
    """Follows the transaction and dead-letter topics into this replica's pending view.

    Arguments:
        settings: the worker's settings (topics, PENDING_TTL, the barrier's timeout).
        pool: the pending view it fills.
        view: the replica's chain, to decode transactions and see what the head settled.
        replica: the replica's state, whose applied groups move the head.
    """

    def __init__(self, settings: Settings, pool: PendingPool, view: ChainView, replica: ReplicaState) -> None:
        super().__init__()
        self.settings = settings
        self.pool = pool
        self.view = view
        self.names = names = TopicNames(settings.cluster)
        self.head_moved = asyncio.Event()
        replica.listeners.append(lambda outcome: self.head_moved.set())
        replica.rebased.append(self.start_over)
        self._starting_over = False
        self.records = 0
        self.undecodable = 0
        self.consumer: AIOKafkaConsumer | None = None
        self.taken: dict[TopicPartition, int] = {}
        """Next offset of each partition after the records put into the view."""
        self.catch_up = SharedCatchUp(lambda: self.consumer, (names.transactions,), lambda: self.taken,
                                      settings.fetch_max_wait_ms)

    async def on_start(self) -> None:
        self.pool.barrier = self.barrier

    async def barrier(self) -> bool:
        """True once the view holds every transaction the topic held when called; False after
        ``PENDING_SYNC_TIMEOUT`` s (a reader still starting or restarting holds callers until then)."""
        return await self.catch_up.wait(self.settings.pending_sync_timeout)

    def start_over(self) -> None:
        """Read the topics again as at start: the master created them anew when it re-based the cluster."""
        self._starting_over = True

    @mode.Service.task
    async def _follow(self) -> None:
        view, pool = self.view, self.pool
        while not view.ready():  # decoding needs the chain's rules: wait for genesis
            await asyncio.sleep(0.5)
        while not self.should_stop:
            try:
                await self._read(view, pool)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pending view: reading the transaction topic failed; again in 2s")
                await asyncio.sleep(2.0)

    async def _read(self, view: ChainView, pool: PendingPool) -> None:
        settings, names = self.settings, self.names
        consumer, partitions = await open_reader(settings.bootstrap_servers, settings.fetch_max_wait_ms,
                                                 (names.transactions, names.dead_letters))
        try:
            self._starting_over = False
            await seek_since(consumer, partitions, time.time() - settings.pending_ttl, "pending view")
            self.taken = {tp: await consumer.position(tp) for tp in partitions}
            self.consumer = consumer
            log.info("pending view: following %s and %s (%d partitions)", names.transactions, names.dead_letters, len(partitions))
            while not self._starting_over:
                batches = await consumer.getmany(timeout_ms=read_wait_ms(pool.loaded))
                for tp, records in batches.items():
                    for record in records:
                        self._take(view, pool, tp.topic, record)
                    if records:
                        self.taken[tp] = records[-1].offset + 1
                if not pool.loaded:
                    pool.loaded = holds_fetched_end(consumer, partitions, self.taken)
        finally:
            self.consumer = None
            await consumer.stop()

    def _take(self, view: ChainView, pool: PendingPool, topic: str, record: object) -> None:
        self.records += 1
        value: bytes | None = getattr(record, "value", None)
        if not value:
            return
        if topic == self.names.dead_letters:
            try:
                pool.drop(bytes.fromhex(str(boundedjson.loads(value)["hash"])[2:]))
            except (ValueError, KeyError, TypeError):
                pass
            return
        received_at = getattr(record, "timestamp", 0) / 1000
        if received_at + pool.ttl <= time.time():
            return
        try:
            entry = parse(value, received_at, view.decode)
        except Exception:  # noqa: BLE001 - replicas produce only what they decoded; log and skip anything else
            self.undecodable += 1
            log.warning("pending view: skipped an undecodable record at %s", topic)
            return
        if view.included(entry.tx_hash) or entry.nonce < view.nonce(entry.sender):
            return
        pool.add(entry)

    @mode.Service.task
    async def _prune(self) -> None:
        """After the head moved: drop what the chain settled; every second: drop what expired."""
        view, pool, reorgs = self.view, self.pool, ReorgWatch()
        while not self.should_stop:
            try:
                await asyncio.wait_for(self.head_moved.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            self.head_moved.clear()
            try:
                if view.ready():
                    for entry in reorgs.dropped(view):  # what a reorg took out of the chain is pending again
                        pool.add(entry)
                if len(pool) and view.ready():
                    pool.prune(view.included, view.nonce)
                pool.expire()
            except Exception:  # noqa: BLE001 - a read racing the apply agent; the next round prunes
                log.debug("pending view: prune failed", exc_info=True)
            await asyncio.sleep(0.02)
