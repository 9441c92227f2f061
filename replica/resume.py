"""Where a replica may resume: its stored offset, checked against the log that is there now.

The offset stored with the data is the only truth. Before the first fetch, the
replica checks that the log still holds it: not older than the earliest offset
Kafka keeps (retention), not beyond the log's end, and the very message it
applied last still sitting at ``next_offset - 1`` (same authenticator). A log
that was reset, recreated or belongs to another cluster fails that last check
even when it happens to be long enough.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from broker import clients
from cluster.record import MAC_SIZE
from replica.position import Position


class ResumeRefused(Exception):
    """The replica must not start from its stored position; the message says what to do."""


@dataclass(frozen=True)
class LogProbe:
    """What the log holds now around a stored position."""

    partitions: int
    earliest: int
    end: int
    previous: bytes | None  # the message at next_offset - 1, when asked for and present


def check_resume(position: Position, probe: LogProbe, topic: str) -> None:
    """Refuse, with what to do, unless the log continues exactly where the database stopped."""
    if probe.partitions != 1:
        raise ResumeRefused(
            f"{topic} has {probe.partitions} partitions; the CDC log must have exactly one (order is the contract). "
            f"It was probably auto-created by the broker: delete it and let the master create it (ethercattle topics)."
        )
    if position.next_offset < probe.earliest:
        missing = probe.earliest - position.next_offset
        raise ResumeRefused(
            f"stored offset {position.next_offset} of {topic} is older than the oldest offset Kafka still holds "
            f"({probe.earliest}): {missing} messages have left retention. Restore a newer snapshot "
            f"(ethercattle snapshot restore) into an empty datadir and start again."
        )
    if position.next_offset == 0:
        return
    if probe.previous is None:
        raise ResumeRefused(
            f"stored offset {position.next_offset} of {topic} is beyond the log's end ({probe.end}): the log was reset "
            f"(a local broker restarted?) or belongs to another cluster. Start this replica from a snapshot of the "
            f"current log, or from an empty datadir."
        )
    if probe.previous[-MAC_SIZE:] != position.last_message_mac:
        raise ResumeRefused(
            f"the message at offset {position.next_offset - 1} of {topic} is not the one this database applied there: "
            f"the log was reset or recreated, or belongs to another cluster. Start this replica from a snapshot of the "
            f"current log, or from an empty datadir."
        )


async def probe_log(bootstrap_servers: list[str], topic: str, position: Position, timeout: float = 5.0) -> LogProbe:
    """Read the log's bounds and the message before the stored offset, without a consumer group.

    The end comes from a fetch's high watermark where one was made: ListOffsets
    "latest" is wrong on some brokers (Tansu answers a batch's base offset + 1).
    """
    consumer = clients.reader(bootstrap_servers)
    await consumer.start()
    try:
        partitions = len(consumer.partitions_for_topic(topic) or ()) or len(await _partitions(consumer, topic))
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        earliest = (await consumer.beginning_offsets([partition]))[partition]
        end = (await consumer.end_offsets([partition]))[partition]
        previous = None
        if position.next_offset > earliest:
            consumer.seek(partition, position.next_offset - 1)
            previous = await _fetch_one(consumer, partition, position.next_offset - 1, timeout)
            end = max(end, consumer.highwater(partition) or 0)
            if previous is not None:  # the log holds offset next_offset - 1: it ends past it, whatever ListOffsets said
                end = max(end, position.next_offset)
        return LogProbe(partitions, earliest, end, previous)
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer._client.cluster.partitions_for_topic(topic) or set()


async def _fetch_one(consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int, timeout: float) -> bytes | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        batches = await consumer.getmany(partition, timeout_ms=200, max_records=1)
        for message in batches.get(partition, []):
            return (message.value or b"") if message.offset == offset else None  # a null value (anyone's tombstone) is a message too
    return None
