"""The local broker's end of a long partition: how soon a consumer there sees a new record.

    .venv/bin/python bench/brokertail.py [--lengths 0,8000,16000,32000]

Starts a local broker (Tansu, memory storage), creates a topic of one partition and
grows it one record per produce request (as a replica's filter store writes the filter
topic: one install, poll or removal at a time), while a groupless reader follows it from
its start with a 20 ms fetch wait (as every replica's filter reader does). At each
length it prints the median of eight produce acknowledgements, and of eight times from
a produce to a second consumer, waiting at the partition's end, seeing the record: what
the filter calls' barrier waits for. ``bench/soak.py`` showed what that does to a replica.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

from deploy.localbroker import LocalBroker  # noqa: E402

TOPIC = "tail"
PARTITION = TopicPartition(TOPIC, 0)
FETCH_WAIT_MS = 20
"""The replicas' default ``FETCH_MAX_WAIT_MS``."""


async def follow(bootstrap: str) -> None:
    """A reader from the partition's start, as a replica's filter reader."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=FETCH_WAIT_MS, enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign([PARTITION])
        await reader.seek_to_beginning(PARTITION)
        while True:
            await reader.getmany(timeout_ms=50)
    finally:
        await reader.stop()


async def tail_latency(bootstrap: str, producer: AIOKafkaProducer, rounds: int = 8) -> tuple[float, float]:
    """Median seconds of a produce's acknowledgement, and from a produce to a reader at the end seeing it."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=FETCH_WAIT_MS, enable_auto_commit=False)
    await reader.start()
    acks, seen = [], []
    try:
        reader.assign([PARTITION])
        await reader.seek_to_end(PARTITION)
        for _ in range(rounds):
            key = secrets.token_hex(8).encode()
            started = time.perf_counter()
            await producer.send_and_wait(TOPIC, key=key, value=b"x" * 300, partition=0)
            acks.append(time.perf_counter() - started)
            while not any(record.key == key for record in (await reader.getmany(PARTITION, timeout_ms=10_000)).get(PARTITION, [])):
                pass
            seen.append(time.perf_counter() - started)
    finally:
        await reader.stop()
    return statistics.median(acks), statistics.median(seen)


async def measure(bootstrap: str, lengths: list[int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    follower = asyncio.ensure_future(follow(bootstrap))
    written, started = 0, time.monotonic()
    try:
        for length in lengths:
            while written < length:  # half values, half tombstones, as installs and removals
                value = b"y" * 300 if written % 2 else None
                await producer.send_and_wait(TOPIC, key=secrets.token_hex(16).encode(), value=value, partition=0)
                written += 1
            ack, seen = await tail_latency(bootstrap, producer)
            print(f"{time.monotonic() - started:6.0f}s  {written:7,d} records: produce acknowledged p50 {ack * 1000:7.1f} ms, "
                  f"seen at the end p50 {seen * 1000:8.1f} ms", flush=True)
            written += 8
    finally:
        follower.cancel()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="0,8000,16000,32000",
                        help="comma-separated partition lengths (records) to measure at")
    args = parser.parse_args()
    lengths = sorted(int(n) for n in args.lengths.split(","))
    with LocalBroker() as broker:
        asyncio.run(measure(f"127.0.0.1:{broker.port}", lengths))


if __name__ == "__main__":
    main()
