"""Faust's aiokafka transport with a configurable fetch wait.

Faust's aiokafka driver hard-codes ``fetch_max_wait_ms=1500``. A broker that
does not answer a fetch early when data arrives (Tansu, measured here) then
delays every delivery by about half of that. The wait bounds the replica's
commit-to-visible latency, so it is our setting, not a constant. Registered as
the ``kafka://`` transport by the app.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    fetch_max_wait_ms: ClassVar[int] = 1500

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


def install(fetch_max_wait_ms: int) -> None:
    """Make ``kafka://`` brokers use this transport in this process."""
    from faust.transport.drivers import TRANSPORTS

    ConsumerThread.fetch_max_wait_ms = fetch_max_wait_ms
    TRANSPORTS.aliases["kafka"] = f"{__name__}:Transport"
