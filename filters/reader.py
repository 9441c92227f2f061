"""The cluster's filter store on Kafka: every replica reads the whole filter topic.

A plain aiokafka consumer without a group (every replica reads everything, from
the start: the topic is compacted, one value per live filter) follows the filter
topic into this replica's ``FilterStore``, and the transaction topic's
recent records into its index of pending hashes. An aiokafka producer
(``acks="all"``) publishes this replica's writes; ``FilterStore.put`` waits for
its acknowledgement. A timer tombstones filters idle for ``FILTER_TIMEOUT``
seconds (any replica may; several tombstones of one filter are harmless).

Why not a Faust table: its recovery on Tansu stops one record short (see the
architecture guide), and a table partitioned by a group would give each replica
only a share of the filters.
"""

from __future__ import annotations

import asyncio
import logging
import time

import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from eth_utils import keccak

from broker import clients
from chain.transactions import split_network_form
from cluster.settings import Settings
from cluster.topics import TopicNames
from filters.store import FilterJSON, FilterStore, decode, encode
from replica.catchup import SharedCatchUp, holds_fetched_end, open_reader, read_wait_ms, seek_since

log = logging.getLogger("ethercattle.filters")


class FilterReader(mode.Service):
    """Follows the filter topic (and the transaction topic's hashes) into this replica's filter store."""

    def __init__(self, settings: Settings, store: FilterStore) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.names = names = TopicNames(settings.cluster)
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.taken: dict[TopicPartition, int] = {}
        """Next offset of each partition past the records put into the store."""
        self.catch_up = SharedCatchUp(lambda: self.consumer, (names.filters, names.transactions), lambda: self.taken,
                                      settings.fetch_max_wait_ms)
        self._starting_over = False

    def start_over(self) -> None:
        """Read the topics again as at start: the master created them anew when it re-based the cluster."""
        self._starting_over = True

    async def on_start(self) -> None:
        self.store.barrier = self.barrier
        producer = clients.producer(self.settings, linger_ms=0)
        await producer.start()
        self.producer = producer
        self.store.publisher = self.publish

    async def on_stop(self) -> None:
        self.store.publisher = None
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def publish(self, filter_id: str, value: FilterJSON | None) -> None:
        """One filter's new value (None: tombstone), acknowledged by the broker on return."""
        producer = self.producer
        if producer is None:
            raise RuntimeError("the filter producer is stopped")
        await producer.send_and_wait(self.names.filters, key=filter_id.encode(), value=encode(value))

    async def barrier(self) -> bool:
        """True once the store holds every filter record the topic held when called."""
        return await self.catch_up.wait(self.settings.filter_sync_timeout)

    @mode.Service.task
    async def _follow(self) -> None:
        while not self.should_stop:
            try:
                await self._read(self.store)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("filters: reading the filter topic failed; again in 2s")
                await asyncio.sleep(2.0)

    async def _read(self, store: FilterStore) -> None:
        names = self.names
        consumer, partitions = await open_reader(self.settings.bootstrap_servers, self.settings.fetch_max_wait_ms,
                                                 (names.filters, names.transactions))
        try:
            self._starting_over = False
            await self._seek(consumer, partitions)
            self.taken = {tp: await consumer.position(tp) for tp in partitions}
            for tp, offset in self.taken.items():
                if tp.topic == names.transactions:
                    store.transactions.advance(tp.partition, offset)
            self.consumer = consumer
            log.info("filters: following %s (%d filter partitions)", names.filters,
                     sum(tp.topic == names.filters for tp in partitions))
            while not self._starting_over:
                batches = await consumer.getmany(timeout_ms=read_wait_ms(store.loaded))
                for tp, records in batches.items():
                    for record in records:
                        self._take(store, tp, record)
                    if records:
                        self.taken[tp] = records[-1].offset + 1
                if not store.loaded:
                    store.loaded = holds_fetched_end(consumer, partitions, self.taken)
        finally:
            self.consumer = None
            await consumer.stop()

    async def _seek(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """The filter topic from its start; the transaction topic from FILTER_TIMEOUT ago (older
        pending-filter cursors belong to expired filters)."""
        for tp in partitions:
            if tp.topic == self.names.filters:
                await consumer.seek_to_beginning(tp)
        txs = [tp for tp in partitions if tp.topic == self.names.transactions]
        await seek_since(consumer, txs, time.time() - self.settings.filter_timeout, "filters")

    def _take(self, store: FilterStore, tp: TopicPartition, record: object) -> None:
        key: bytes | None = getattr(record, "key", None)
        value: bytes | None = getattr(record, "value", None)
        offset: int = getattr(record, "offset", 0)
        if tp.topic == self.names.filters:
            if not key:
                return
            try:
                store.apply(key.decode(), decode(value))
            except ValueError:
                log.warning("filters: skipped an undecodable filter record at offset %d", offset)
            return
        try:
            canonical, _ = split_network_form(value or b"")
        except Exception:  # noqa: BLE001 - replicas produce only what they decoded; skip anything else
            canonical = b""
        if canonical:
            store.transactions.add(tp.partition, offset, keccak(canonical))
        else:
            store.transactions.advance(tp.partition, offset + 1)

    @mode.Service.task
    async def _expire(self) -> None:
        """Tombstone filters idle for FILTER_TIMEOUT (checked every tenth of it, at most every 5 s)."""
        timeout = self.settings.filter_timeout
        interval = min(timeout / 10, 5.0)
        while not self.should_stop:
            await asyncio.sleep(interval)
            try:
                await self.store.expire(timeout, self.settings.rpc_broker_timeout)
            except Exception:  # noqa: BLE001 - the next round tries again
                log.debug("filters: expiring idle filters failed", exc_info=True)
