"""Read-your-writes barrier over a fake consumer: callers released only by a fetch after they arrived."""

from __future__ import annotations

import asyncio
import time

from aiokafka import TopicPartition

from replica.catchup import SharedCatchUp, holds_fetched_end, read_wait_ms

TP = TopicPartition("filters", 0)


class FakeConsumer:
    def __init__(self) -> None:
        self.stamp_ms: float | None = None
        self.end = 0

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def last_poll_timestamp(self, tp: TopicPartition) -> float | None:
        return self.stamp_ms

    def highwater(self, tp: TopicPartition) -> int:
        return self.end


def test_callers_wait_for_a_fetch_stamped_after_their_arrival_and_every_record_below_it() -> None:
    async def scenario() -> None:
        consumer, taken = FakeConsumer(), {TP: 0}
        barrier = SharedCatchUp(lambda: consumer, ("filters",), lambda: taken, fetch_max_wait_ms=20)
        consumer.stamp_ms = time.time() * 1000  # a fetch answered just now: too early for a caller arriving now
        waiters = [asyncio.create_task(barrier.wait(2.0)) for _ in range(50)]
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waiters)
        consumer.stamp_ms, consumer.end = (time.time() + 0.05) * 1000, 3  # a later fetch saw 3 records
        await asyncio.sleep(0.02)
        assert not any(w.done() for w in waiters)  # not yet taken
        taken[TP] = 3
        assert await asyncio.gather(*waiters) == [True] * 50
        consumer.stamp_ms = time.time() * 1000
        assert await barrier.wait(0.05) is False  # a new caller needs a newer fetch; gives up at the timeout

    asyncio.run(scenario())


def test_a_reader_without_consumer_releases_nobody() -> None:
    async def scenario() -> None:
        barrier = SharedCatchUp(lambda: None, ("filters",), lambda: {}, fetch_max_wait_ms=20)
        assert await barrier.wait(0.1) is False

    asyncio.run(scenario())


def test_a_view_holds_the_fetched_end_only_once_every_partition_was_fetched_and_taken() -> None:
    consumer, other = FakeConsumer(), TopicPartition("filters", 1)
    consumer.end = 3
    ends = {TP: 3, other: None}
    consumer.highwater = lambda tp: ends[tp]  # type: ignore[method-assign]
    assert not holds_fetched_end(consumer, [TP, other], {TP: 3})  # partition 1 never fetched
    ends[other] = 0
    assert not holds_fetched_end(consumer, [TP, other], {TP: 2})  # a record below the end not taken
    assert holds_fetched_end(consumer, [TP, other], {TP: 3})


def test_a_reader_waits_briefly_for_records_while_loading_and_a_second_once_loaded() -> None:
    assert read_wait_ms(loaded=False) == 50  # an empty topic's end is checked after each wait
    assert read_wait_ms(loaded=True) == 1000  # records end the wait as they come: idle, it sleeps
