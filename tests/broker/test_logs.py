"""Repeated Kafka client errors: the first of a kind passes, repeats are counted into the next one passed."""

from __future__ import annotations

import logging

from broker.logs import RepeatFilter, quiet_kafka_client_repeats


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(message: str = "Unable connect to node with id %s: %s", args: tuple[object, ...] = (111, "refused"),
           name: str = "aiokafka") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, args, None)


def test_repeats_within_the_window_are_dropped_and_counted_into_the_next_line_passed() -> None:
    clock = Clock()
    repeat = RepeatFilter(window=10, clock=clock)
    assert repeat.filter(record())
    passed = []
    for second in range(1, 10):
        clock.now = second
        passed.append(repeat.filter(record(args=(111, f"try {second}"))))
    assert not any(passed)
    clock.now = 12
    summary = record()
    assert repeat.filter(summary)
    assert summary.getMessage() == "Unable connect to node with id 111: refused [9 more like this in the last 12s]"


def test_different_kinds_pass_independently() -> None:
    repeat = RepeatFilter(window=10, clock=Clock())
    assert repeat.filter(record())
    assert repeat.filter(record("Unable to update metadata from %s", ([111],)))
    assert repeat.filter(record(name="aiokafka.consumer.fetcher"))
    assert not repeat.filter(record())


def test_every_kafka_client_logger_gets_the_filter() -> None:
    installed = quiet_kafka_client_repeats()
    try:
        for name in ("aiokafka", "aiokafka.conn", "aiokafka.consumer.fetcher", "aiokafka.consumer.group_coordinator"):
            assert installed in logging.getLogger(name).filters, name
    finally:
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("aiokafka"):
                logging.getLogger(name).removeFilter(installed)
