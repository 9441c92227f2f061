"""Peeking at the end of the CDC log: the master's newest heartbeat, ahead of what was applied.

While a replica catches up, the last heartbeat it applied is as old as its
position in the log; the master's real head (``eth_syncing``'s highestBlock)
sits in the heartbeats near the log's end. This reads the last few messages
with a throwaway consumer (no group), authenticates them like the applier does,
and keeps the newest heartbeat. Nothing read here is ever applied.
"""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from broker import clients
from cluster.record import Authenticator, Heartbeat, Kind, LogError, decode


async def newest_heartbeat(
    bootstrap_servers: list[str], topic: str, auth: Authenticator, end: int, window: int = 64, timeout: float = 2.0
) -> Heartbeat | None:
    """The newest authentic heartbeat among the last ``window`` messages before offset ``end``."""
    if end <= 0:
        return None
    consumer = clients.reader(bootstrap_servers, fetch_max_wait_ms=50, request_timeout_ms=int(timeout * 1000) + 1000)
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, max(end - window, 0))
        newest: Heartbeat | None = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batches = await consumer.getmany(partition, timeout_ms=100)
            messages = batches.get(partition, [])
            for message in messages:
                try:
                    envelope = decode(auth, message.value or b"")  # a null value is a stray
                except LogError:
                    continue
                if envelope.kind is Kind.HEARTBEAT and envelope.heartbeat is not None:
                    if newest is None or envelope.heartbeat.sequence >= newest.sequence:
                        newest = envelope.heartbeat
            if messages and messages[-1].offset >= end - 1:
                break
        return newest
    finally:
        await consumer.stop()
