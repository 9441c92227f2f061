"""Read-your-writes across replicas: wait until a groupless consumer holds what its topic held "now".

Shared by the readers that every replica runs over a cluster-wide topic (the
pending view over the transaction topic, the filter store over the filter
topic). aiokafka fetches in the background; a fetch response stamped later than
now plus the fetch wait answers a request sent after now, so its high watermark
covers every record the broker acknowledged before now. Once every partition
has such a response and the reader has taken every record below that high
watermark, the reader's view holds everything acknowledged before the call.
Costs about one to two fetch waits (``FETCH_MAX_WAIT_MS``). The high watermark
of fetch responses is used, not ``end_offsets`` (wrong on Tansu).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from broker import clients

log = logging.getLogger("ethercattle.catchup")


def holds_fetched_end(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition],
                      taken: Mapping[TopicPartition, int]) -> bool:
    """Has every partition been fetched, and every record below its fetched high watermark taken?

    For a consumer opened by ``open_reader``, every fetch came after the open, so
    this says the reader's view holds what its topics held when it started:
    the first catch-up of a view, which readiness waits for.
    """
    for tp in partitions:
        end = consumer.highwater(tp)
        if end is None or taken.get(tp, 0) < end:
            return False
    return True


async def seek_since(consumer: AIOKafkaConsumer, partitions: list[TopicPartition], since: float,
                     describe: str) -> None:
    """Seek each partition to its first record at or after ``since`` (Unix seconds).

    A partition with nothing that recent starts at its end; a broker without
    offset lookups by time has every partition read from its start (the reader
    skips what is too old by the records' timestamps).
    """
    try:
        found = await consumer.offsets_for_times({tp: int(since * 1000) for tp in partitions}) if partitions else {}
    except Exception as exc:  # noqa: BLE001 - a broker without timestamp lookups
        log.info("%s: no offset lookup by time (%r); reading from the start", describe, exc)
        found = {}
    for tp in partitions:
        hit = found.get(tp)
        if hit is not None:
            consumer.seek(tp, hit.offset)
        elif tp in found:
            await consumer.seek_to_end(tp)
        else:
            await consumer.seek_to_beginning(tp)


class SharedView:
    """A replica's copy of a cluster-wide topic (the pending view, the filter store): what its RPC
    side and readiness need from the reader that follows the topic."""

    def __init__(self) -> None:
        self.barrier: Callable[[], Awaitable[bool]] | None = None
        """Set by the topic reader: True once the view holds every record the topic held when called
        (False when it gave up waiting)."""
        self.loaded = False
        """Set by the reader once it read the topic up to the end it first saw: till then a record
        another replica acknowledged may be missing, so the replica is not ready."""
        self.barrier_timeouts = 0
        """Calls that stopped waiting for the view to catch up and answered from what it held."""

    async def sync(self) -> None:
        """Wait until the view holds what the topic held when called (bounded by the reader's timeout)."""
        if self.barrier is not None and not await self.barrier():
            self.barrier_timeouts += 1


class SharedCatchUp:
    """``caught_up`` for many concurrent callers at the cost of one check loop.

    Each caller needs every partition fetched by a response stamped after its own
    arrival plus the fetch wait, and every record below that response's high
    watermark taken. One loop checks the partitions every 2 ms while callers wait
    and releases every caller whose time the oldest partition stamp has passed,
    instead of one check loop per caller. Unlike ``caught_up``, a reader without a
    consumer (starting, or restarting after an error) releases nobody: callers wait
    for it or time out.
    """

    def __init__(self, consumer: Callable[[], AIOKafkaConsumer | None], topics: tuple[str, ...],
                 taken: Callable[[], Mapping[TopicPartition, int]], fetch_max_wait_ms: int) -> None:
        self.consumer = consumer
        self.topics = topics
        self.taken = taken
        self.fetch_wait = fetch_max_wait_ms / 1000
        self._waiters: list[tuple[float, asyncio.Future[bool]]] = []
        self._running: asyncio.Task[None] | None = None

    async def wait(self, timeout: float) -> bool:
        """True once the reader holds what its topics held when called; False after ``timeout`` s."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append((time.time() + self.fetch_wait, future))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._check())
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return False

    def _covered_until(self) -> float:
        """The time up to which every partition is covered (-inf: none, e.g. while the reader restarts)."""
        consumer = self.consumer()
        if consumer is None:
            return float("-inf")
        partitions = [tp for tp in consumer.assignment() if tp.topic in self.topics]
        if not partitions:
            return float("-inf")
        taken = self.taken()
        oldest = float("inf")
        for tp in partitions:
            try:
                stamp = consumer.last_poll_timestamp(tp)
            except Exception:  # noqa: BLE001 - not assigned (any more)
                continue
            end = consumer.highwater(tp)
            if stamp is None or end is None or taken.get(tp, 0) < end:
                return float("-inf")
            oldest = min(oldest, stamp / 1000)
        return oldest

    async def _check(self) -> None:
        while self._waiters:
            until = self._covered_until()
            waiting = []
            for since, future in self._waiters:
                if future.done():
                    continue
                if since <= until:
                    future.set_result(True)
                else:
                    waiting.append((since, future))
            self._waiters = waiting
            if waiting:
                await asyncio.sleep(0.002)


def read_wait_ms(loaded: bool) -> int:
    """How long a reader's ``getmany`` waits for records: briefly until its view is loaded, then a second.

    Records end the wait as they arrive, so a long one costs no latency. Until the
    view holds the end the reader first saw, the reader checks after each wait (an
    empty topic's end comes with a fetch, not with records); once loaded, a short
    wait only woke an idle replica's event loop 20 times a second. The second
    bounds how soon the reader notices that it must start over (a re-based cluster).
    """
    return 1000 if loaded else 50


async def open_reader(bootstrap_servers: list[str], fetch_max_wait_ms: int, topics: tuple[str, ...]) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started groupless consumer assigned every partition of ``topics`` (the readers' common start).

    Every replica reads these cluster-wide topics whole, so no group: a group
    would share their partitions between replicas.
    """
    consumer = clients.reader(bootstrap_servers, fetch_max_wait_ms=fetch_max_wait_ms)
    await consumer.start()
    try:
        partitions: list[TopicPartition] = []
        for topic in topics:
            found = consumer.partitions_for_topic(topic) or set()
            if not found:
                await consumer._client.force_metadata_update()  # noqa: SLF001 - a fresh client knows no topic yet
                found = consumer.partitions_for_topic(topic) or set()
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
    except BaseException:
        await consumer.stop()
        raise
    return consumer, partitions
