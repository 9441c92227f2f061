"""Continuing on a log the master re-based after the broker lost the old one.

When the broker loses the CDC log (the local broker keeps it in memory), the
master creates the topic again and puts a REBASE message on the new log naming
the last record the old log held (``master.publisher``); records the master
sent before it noticed may precede it. A replica whose database holds at least
that record lost nothing: it continues on the new log from its first offset
(records it already holds are skipped as duplicates).
A replica holding fewer records cannot continue, and says so when it applies
the REBASE message (a gap): it needs the newest snapshot.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import TopicPartition

from broker import clients
from cluster.record import Authenticator, Kind, LogError, Rebase, decode
from replica.position import Position

log = logging.getLogger("ethercattle.apply")


async def find_rebase(
    bootstrap_servers: list[str], topic: str, auth: Authenticator, scan: int = 10_000, timeout: float = 5.0
) -> tuple[int, Rebase] | None:
    """(the log's first offset, its REBASE) when one of its first ``scan`` messages is one; None otherwise or unreadable."""
    consumer = clients.reader(bootstrap_servers)
    try:
        await asyncio.wait_for(consumer.start(), timeout)
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        earliest = (await consumer.beginning_offsets([partition]))[partition]
        consumer.seek(partition, earliest)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for message in (await consumer.getmany(partition, timeout_ms=200, max_records=1000)).get(partition, []):
                if message.offset >= earliest + scan:
                    return None
                try:
                    envelope = decode(auth, message.value or b"")
                except LogError:
                    continue
                if envelope.kind is Kind.REBASE and envelope.rebase is not None:
                    return earliest, envelope.rebase
        return None
    except Exception as exc:  # the broker may be away or the topic not created yet: asked again later
        log.debug("could not read the start of %s (%r)", topic, exc)
        return None
    finally:
        await consumer.stop()


def continued_position(position: Position, found: tuple[int, Rebase] | None) -> Position | None:
    """Where this database continues on a re-based log, or None when it cannot (or the log is not re-based)."""
    if found is None:
        return None
    offset, rebase = found
    if rebase.sequence > position.sequence:
        return None
    return Position(position.sequence, offset, b"")
