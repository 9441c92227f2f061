"""What the CDC log says about a snapshot: is it still in retention, and where does a master stand.

Restore asks the log whether it still continues the snapshot, with the very
check a replica makes when it resumes (``replica.resume.check_resume``): not
older than the earliest offset Kafka keeps, not beyond the log's end, and the
message the snapshot applied last still at ``next_offset - 1``. A snapshot that
fails the first is refused with how old it is.

A master's database has no log offset; ``locate_master_position`` reads the
log (without a consumer group) to find where a replica holding the master's
records up to ``sequence`` resumes: the first message that carries a later
record, or the log's end. Messages that fail authentication are not part of
the log and are passed over, as a replica skips them.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import TopicPartition

from broker import clients
from cluster.record import MAC_SIZE, Authenticator, Kind, LogError, Unauthentic, decode
from cluster.settings import Settings
from cluster.topics import TopicNames
from replica.position import Position
from replica.resume import LogProbe, ResumeRefused, check_resume, probe_log
from snapshot.manifest import LogMismatch, Manifest, SnapshotError, SnapshotTooOld, format_age
from snapshot.progress import Progress


class BrokerUnreachable(SnapshotError):
    """The log could not be asked; the message says how to go on without it."""


def manifest_position(manifest: Manifest) -> Position:
    return Position(manifest.sequence, manifest.next_offset, bytes.fromhex(manifest.last_message_mac))


def check_snapshot_against_log(manifest: Manifest, probe: LogProbe, topic: str, where: str, now: float | None = None) -> None:
    """Refuse a snapshot the log cannot continue; ``SnapshotTooOld`` (with its age) when retention dropped its offset."""
    now = time.time() if now is None else now
    try:
        check_resume(manifest_position(manifest), probe, topic)
    except ResumeRefused as refused:
        if manifest.next_offset < probe.earliest:
            age = manifest.age(now)
            raise SnapshotTooOld(
                f"snapshot {where} is too old: it was taken {format_age(age)} ago ({manifest.created_at}) at offset "
                f"{manifest.next_offset} of {topic}, and Kafka's retention has since dropped everything before offset "
                f"{probe.earliest} ({probe.earliest - manifest.next_offset} messages). A replica restored from it could "
                f"not catch up. Restore a newer snapshot, or take one from a running replica "
                f"(ethercattle snapshot create --url http://REPLICA:PORT --out PATH).",
                offset=manifest.next_offset, earliest=probe.earliest, age_seconds=age,
            ) from None
        raise LogMismatch(f"snapshot {where} does not fit the log: {refused}") from None


async def probe_for(settings: Settings, position: Position, timeout: float = 15.0) -> LogProbe:
    """The CDC log's bounds around ``position``; ``BrokerUnreachable`` if the broker does not answer in time."""
    topic = TopicNames(settings.cluster).cdc
    try:
        return await asyncio.wait_for(probe_log(settings.bootstrap_servers, topic, position), timeout)
    except Exception as exc:  # aiokafka's connection errors, timeouts
        raise BrokerUnreachable(
            f"could not read {topic} on {settings.broker} ({exc!r}) to check the snapshot against the log. "
            f"Retry when the broker is up, or pass --skip-log-check (the replica checks again when it starts)."
        ) from None


async def locate_master_position(settings: Settings, sequence: int, progress: Progress | None = None, timeout: float = 120.0) -> Position:
    """Where a replica that holds the master's records up to ``sequence`` resumes in the log.

    Reads the log from its earliest offset and stops at the first message
    carrying a record (or a part of one) after ``sequence``; a replica starting
    there skips anything it already holds by sequence number. Raises
    ``SnapshotError`` if the log holds an authentic message that cannot be
    decoded, ``BrokerUnreachable`` on a timeout.
    """
    auth = Authenticator.for_cluster(settings.secret, settings.cluster)
    topic = TopicNames(settings.cluster).cdc
    partition = TopicPartition(topic, 0)
    progress = progress or Progress.null()
    progress.phase("locate", unit="messages")
    consumer = clients.reader(settings.bootstrap_servers)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        await asyncio.wait_for(consumer.start(), timeout=15)
        consumer.assign([partition])
        earliest = (await consumer.beginning_offsets([partition]))[partition]
        consumer.seek(partition, earliest)
        previous_mac, offset = b"", earliest
        while True:
            if loop.time() > deadline:
                raise BrokerUnreachable(f"reading {topic} to locate record {sequence} took longer than {timeout}s")
            batches = await consumer.getmany(partition, timeout_ms=300, max_records=2000)
            for message in batches.get(partition, []):
                value = message.value or b""  # a null value (anyone's tombstone) is a stray like any other
                if _carries_after(auth, value, sequence, message.offset, topic):
                    return _resumable(Position(sequence, message.offset, previous_mac), earliest, topic)
                previous_mac, offset = value[-MAC_SIZE:], message.offset + 1
            highwater = consumer.highwater(partition)
            progress.update(offset - earliest, None if highwater is None else highwater - earliest)
            if highwater is not None and offset >= highwater:
                return _resumable(Position(sequence, offset, previous_mac), earliest, topic)
    except (asyncio.TimeoutError, OSError) as exc:
        raise BrokerUnreachable(f"could not read {topic} on {settings.broker} ({exc!r})") from None
    finally:
        progress.close()
        await consumer.stop()


def _resumable(position: Position, earliest: int, topic: str) -> Position:
    """A replica resumes only where the log still holds the message before its offset."""
    if position.next_offset > 0 and position.next_offset == earliest:
        raise SnapshotError(
            f"the master's position in {topic} is offset {position.next_offset}, the oldest one Kafka still holds, so "
            f"the message before it (which a resuming replica checks) has left retention. Snapshot a replica instead."
        )
    return position


def _carries_after(auth: Authenticator, value: bytes, sequence: int, offset: int, topic: str) -> bool:
    """Whether the message carries a record after ``sequence``; a message that is not part of the log does not."""
    try:
        envelope = decode(auth, value)
    except Unauthentic:
        return False
    except LogError as exc:
        raise SnapshotError(f"{topic} offset {offset}: {exc}; the log cannot be trusted to start replicas from") from None
    if envelope.kind is Kind.RECORDS:
        return any(record.sequence > sequence for record in envelope.records)
    if envelope.kind is Kind.PART:
        assert envelope.part is not None
        return envelope.part.sequence > sequence
    return False


async def earliest_offset(settings: Settings, timeout: float = 10.0) -> int:
    """The oldest offset of the CDC log that Kafka still holds."""
    probe = await probe_for(settings, Position(), timeout)
    return probe.earliest
