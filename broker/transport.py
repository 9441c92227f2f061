"""Faust's aiokafka transport with a configurable fetch wait.

Faust's aiokafka driver hard-codes ``fetch_max_wait_ms=1500``. A broker that
does not answer a fetch early when data arrives (Tansu, measured here) then
delays every delivery by about half of that. The wait bounds the replica's
commit-to-visible latency, so it is our setting, not a constant. Registered as
the ``kafka://`` transport by the app.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, ClassVar

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    fetch_max_wait_ms: ClassVar[int] = 1500

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


class ReadOffsets(defaultdict):  # type: ignore[type-arg]
    """Faust's per-partition read offsets, kept only for topics whose offsets Faust tracks (acks on).

    Faust drops a fetched message whose offset is below the last one it
    delivered. After a seek backwards, batches already in flight raise that
    mark again, and the refetched messages are then silently dropped. For a
    topic declared with ``acks=False`` (the CDC log) the application owns the
    position and its consumer checks continuity itself, so nothing is dropped here.
    """

    def __init__(self, acks_enabled_for: Callable[[str], bool]) -> None:
        super().__init__(lambda: None)
        self._acks_enabled_for = acks_enabled_for

    def __getitem__(self, tp: Any) -> Any:
        if not self._acks_enabled_for(tp.topic):
            return None
        return super().__getitem__(tp)

    def __setitem__(self, tp: Any, offset: Any) -> None:
        if self._acks_enabled_for(tp.topic):
            super().__setitem__(tp, offset)


class Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = ReadOffsets(lambda topic: bool(self.app.topics.acks_enabled_for(topic)))

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


def install(fetch_max_wait_ms: int) -> None:
    """Make ``kafka://`` brokers use this transport in this process."""
    from faust.transport.drivers import TRANSPORTS

    ConsumerThread.fetch_max_wait_ms = fetch_max_wait_ms
    TRANSPORTS.aliases["kafka"] = f"{__name__}:Transport"


def last_fetch_time(consumer: Any, tp: Any) -> float | None:
    """Unix time the broker last answered a fetch of ``tp`` for Faust's ``consumer`` (None if never).

    aiokafka stamps a partition each time a fetch response for it arrives, data
    or not; a broker that went away stops the stamp while the high watermark
    stays frozen at its last value.
    """
    try:
        stamp = consumer._thread._ensure_consumer().last_poll_timestamp(tp)
    except Exception:  # consumer not started, partition not assigned (aiokafka asserts)
        return None
    return None if stamp is None else stamp / 1000
