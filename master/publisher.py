"""The publisher: moves journaled records to the CDC topic, in order, packed into messages.

One task sends everything the master puts on the log (records and heartbeats),
so the log's order is the journal's order. Consecutive records share a Kafka
message up to the size limit (a Faust stream costs ~300 us per message, so one
record per message would cap replicas near 3k records/s); a record larger than
a message is split into parts. A record leaves the journal only once the broker
has acknowledged the message that carries it. When the broker goes away the
publisher says so, keeps the journal, and resends from the first unacknowledged
record when it is back (replicas skip any duplicate by sequence number).

A broker that comes back without the log (the local broker keeps it in
memory) is noticed: on connecting, as a missing or empty CDC topic although
records were published; while publishing, as an acknowledged offset that went
backwards (Tansu acknowledges a produce to a topic it does not have, counting
offsets from 0). The publisher then creates the CDC topic itself, empty and
with one partition, with the rest of the cluster's topics, and re-bases the
cluster on it: the new log's first message (REBASE) names the last
record the old log held and the head, so replicas that hold that record
continue without a snapshot; the records after it are resent from the journal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from itertools import islice
from typing import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from broker import clients
from master import journal
from broker.admin import ensure_topics, log_is_empty, recreate_topic
from cluster.record import (
    Authenticator, Heartbeat, Rebase, encode_heartbeat, encode_parts, encode_rebase, encode_records, envelope_overhead,
)
from cluster.settings import Settings
from cluster.topics import TopicNames
from storage.leveldb import LevelDB

log = logging.getLogger("ethercattle.publisher")

HeadReader = Callable[[], tuple[int, int, bytes]]


class LogLost(Exception):
    """The broker acknowledged an offset at or before the previous one: the log it held is gone."""


@dataclass(frozen=True)
class Outgoing:
    """One Kafka message and the journaled sequences it carries (none for a heartbeat)."""

    value: bytes
    sequences: tuple[int, ...]


def pack(entries: list[tuple[int, bytes]], auth: Authenticator, master: str, max_message_bytes: int) -> list[Outgoing]:
    """Pack journaled records, in order, into as few messages as the size limit allows."""
    room = max_message_bytes - envelope_overhead(auth, master)
    messages: list[Outgoing] = []
    group: list[tuple[int, bytes]] = []
    size = 0

    def close_group() -> None:
        nonlocal group, size
        if group:
            value = encode_records(auth, master, (encoded for _, encoded in group))
            messages.append(Outgoing(value, tuple(sequence for sequence, _ in group)))
        group, size = [], 0

    for sequence, encoded in entries:
        if len(encoded) > room:
            close_group()
            parts = encode_parts(auth, master, encoded, max_message_bytes)
            messages += [Outgoing(part, ()) for part in parts[:-1]]
            messages.append(Outgoing(parts[-1], (sequence,)))
        else:
            if size + len(encoded) > room:
                close_group()
            group.append((sequence, encoded))
            size += len(encoded)
    close_group()
    return messages


class Publisher:
    """Sends the journal to the CDC topic; ``notify`` may be called from any thread."""

    def __init__(self, settings: Settings, db: LevelDB, head: HeadReader, window: int = 16) -> None:
        self.settings = settings
        self.db = db
        self.head = head
        self.window = window
        self.auth = Authenticator.for_cluster(settings.secret, settings.cluster)
        self.topic = TopicNames(settings.cluster).cdc
        self.published = 0
        self._wakeup = asyncio.Event()
        self._heartbeat_due = False
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self.broker_up = False
        self.last_offset = -1  # offset of the last message the broker acknowledged, on the log as it was then

    def notify(self, sequence: int) -> None:
        """A new record was committed (called by the capture wrapper, maybe off the loop thread)."""
        self._loop.call_soon_threadsafe(self._on_commit)

    def _on_commit(self) -> None:
        self._idle.clear()
        self._wakeup.set()

    def request_heartbeat(self) -> None:
        self._heartbeat_due = True
        self._wakeup.set()

    async def flush(self) -> None:
        """Return once every committed record is acknowledged by the broker.

        The journal is the one truth: a record is committed with its journal entry in one
        LevelDB batch, and the entry is deleted once the broker acknowledged it.
        """
        while any(True for _ in journal.pending(self.db)):
            self._idle.clear()
            self._wakeup.set()
            await self._idle.wait()

    def _producer(self) -> AIOKafkaProducer:
        return clients.producer(self.settings, max_request_size=self.settings.max_message_bytes + 4096,
                                linger_ms=0, request_timeout_ms=10_000)

    async def run(self) -> None:
        """Publish forever; reconnect with backoff when the broker goes away."""
        backoff = 0.2
        while True:
            producer = self._producer()
            try:
                await producer.start()
                if not self.broker_up:
                    log.info("connected to broker %s; publishing to %s", self.settings.broker, self.topic)
                self.broker_up, backoff = True, 0.2
                await self._publish_with(producer)
            except LogLost as lost:
                log.error("%s: %s; re-creating it", self.topic, lost)
                await recreate_topic(self.settings, self.topic)
                self.last_offset = -1
            except KafkaError as exc:
                if self.broker_up:
                    log.error("broker %s failed (%r): records stay journaled and are resent when it is back", self.settings.broker, exc)
                else:
                    log.warning("broker %s unreachable (%r); retrying in %.1fs", self.settings.broker, exc, backoff)
                self.broker_up = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                await producer.stop()

    async def _publish_with(self, producer: AIOKafkaProducer) -> None:
        """Resend from the first unacknowledged record, then follow the journal."""
        self.published = journal.last_acknowledged(self.db)
        await self._rebase_if_lost(producer)
        while True:
            entries = list(islice(journal.pending(self.db, after=self.published), 4096))
            messages = pack(entries, self.auth, self.settings.master_id, self.settings.max_message_bytes)
            for start in range(0, len(messages), self.window):
                await self._send_window(producer, messages[start : start + self.window])
            if self._heartbeat_due:
                self._heartbeat_due = False
                self._acknowledged((await producer.send_and_wait(self.topic, self._heartbeat(), partition=0)).offset)
            if not entries:
                unacknowledged = next(journal.pending(self.db), None)
                if unacknowledged is not None and unacknowledged[0] <= self.published:  # never expected: resend, say so
                    log.warning("record %d is journaled but not acknowledged although the publisher is past it (at %d); "
                                "sending it again", unacknowledged[0], self.published)
                    self.published = unacknowledged[0] - 1
                    continue
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()

    async def _send_window(self, producer: AIOKafkaProducer, messages: list[Outgoing]) -> None:
        """Send several messages at once, then retire their records in order as acks arrive."""
        futures = [await producer.send(self.topic, message.value, partition=0) for message in messages]
        for message, future in zip(messages, futures):
            self._acknowledged((await future).offset)
            if message.sequences:
                journal.acknowledge(self.db, list(message.sequences))
                self.published = message.sequences[-1]

    async def _rebase_if_lost(self, producer: AIOKafkaProducer) -> None:
        """Re-create the topics the broker lost; an empty log after published records begins with a REBASE."""
        await ensure_topics(self.settings, check_retention=False)
        if self.published > 0 and await log_is_empty(self.settings, self.topic):
            await self._rebase(producer, self.published)

    def _acknowledged(self, offset: int) -> None:
        """Note an acknowledged offset; raise ``LogLost`` for one at or before the previous (before the journal retires anything)."""
        previous, self.last_offset = self.last_offset, offset
        if offset <= previous:
            raise LogLost(f"the broker acknowledged offset {offset} after offset {previous}: it lost the log")

    async def _rebase(self, producer: AIOKafkaProducer, sequence: int) -> None:
        number, _, head_hash = self.head()
        rebase = Rebase(sequence, number, head_hash)
        self._acknowledged((await producer.send_and_wait(self.topic, encode_rebase(self.auth, self.settings.master_id, rebase), partition=0)).offset)
        log.warning(
            "%s is empty although records up to %d were published: the broker lost the log. Re-based the cluster on a "
            "new log after record %d (block %d); replicas holding that record continue, others restore a snapshot",
            self.topic, sequence, sequence, number,
        )

    def _heartbeat(self) -> bytes:
        number, timestamp, head_hash = self.head()
        beat = Heartbeat(self.published, time.time(), number, timestamp, head_hash)
        return encode_heartbeat(self.auth, self.settings.master_id, beat)


async def heartbeat_timer(publisher: Publisher, interval: float) -> None:
    """Ask for a heartbeat every ``interval`` seconds, so replicas can tell idle from gone."""
    while True:
        publisher.request_heartbeat()
        await asyncio.sleep(interval)
