"""The apply agent: the CDC log into this replica's LevelDB.

Faust owns the consumer, but not the position: on assignment the agent checks
the stored position against the log (and refuses to start when the log cannot
continue it), then seeks there. Groups of messages are applied in one LevelDB
write each. On a message it may not apply the agent halts loudly and for good:
it logs what and where, the replica turns unready, and it never skips.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Sequence

from aiokafka.errors import KafkaError
from faust.streams import Stream
from faust.types import TP, EventT, StreamT

from pipeline.transport import last_fetch_time
from pipeline.worker import app, cdc_topic, settings
from replica.applier import ApplyHalted, remedy
from replica.rebase import continued_position, find_rebase
from replica.resume import ResumeRefused, check_resume, probe_log
from replica.state import replica_state

log = logging.getLogger("ethercattle.apply")


@app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode's stub demands a keyword-only `signal`
async def resume_from_stored_position(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
    replica = replica_state()
    topic = cdc_topic.get_topic_name()
    for tp in assigned:
        if tp.topic != topic:
            continue
        position = replica.applier.position
        try:
            probe = await probe_log(settings.bootstrap_servers, topic, position)
        except KafkaError as exc:
            if not replica.resumed:
                raise
            # a running replica re-assigned while the broker flaps: keep the stored position, check the log's end as it comes
            log.warning("could not check %s on re-assignment (%r); resuming at the stored offset %d", topic, exc, position.next_offset)
            await app.consumer.seek_wait({tp: position.next_offset})
            _delivery.reset()
            continue
        try:
            check_resume(position, probe, topic)
        except ResumeRefused as refused:
            if await _continue_on_rebased_log(tp):
                continue
            if replica.resumed:  # a running replica re-assigned (the broker came back): stay up, unready, and say why
                _log_reset(ApplyHalted("log-reset", position.next_offset, str(refused)))
                return
            log.critical("refusing to start: %s", refused)
            await app.crash(refused)
            raise
        _log_reset(replica.observe_log_end(probe.end))
        # In the consumer's own thread: Faust may already fetch this partition (its recovery can finish
        # before this probe does), and a seek from this thread races with the fetcher (seen: a KeyError
        # inside aiokafka that stopped the worker).
        await app.consumer.seek_wait({tp: position.next_offset})
        _delivery.reset()
        replica.resumed = True
        log.info(
            "resuming %s at offset %d (record %d); log holds offsets %d..%d",
            topic, position.next_offset, position.sequence, probe.earliest, probe.end,
        )


@app.agent(cdc_topic)
async def apply(stream: StreamT) -> None:
    replica = replica_state()
    within = settings.apply_within_ms / 1000
    assert isinstance(stream, Stream)  # take_events is Stream's, missing from StreamT's stub
    async for events in stream.take_events(settings.apply_batch_messages, within=within):
        if replica.halted is not None:
            continue
        count = _continuing(events, _delivery.expected(replica.applier.position.next_offset))
        if count:
            _apply_group(events[:count])
        if count == len(events):
            _delivery.rewound_to = None
        elif replica.halted is None:
            await _rewind(events[count].message.tp, events[count].message.offset)


def _apply_group(events: Sequence[EventT]) -> None:
    replica = replica_state()
    try:
        # a message without a value (a tombstone) is not an envelope: the codec refuses it as corrupt
        outcome = replica.applier.apply([(event.message.offset, event.message.value or b"") for event in events])
    except ApplyHalted as halted:
        replica.halted = halted
        log.critical(
            "HALTED: %s record at offset %d of %s: %s. This replica applies nothing more and is unready. What to do: %s.",
            halted.reason, halted.offset, cdc_topic.get_topic_name(), halted.detail, remedy(halted.reason),
        )
        return
    _delivery.last = max(_delivery.last or 0, events[-1].message.offset)
    _log_reset(replica.observe_log_end(_log_end(events), last_fetch_time(app.consumer, events[-1].message.tp)))
    replica.applied(outcome)


class _Delivery:
    """Where the consumer must deliver next, so a message it drops is noticed, never skipped.

    Faust discards messages it already fetched when a rebalance or a flow stop
    interrupts delivery, then seeks back only to committed offsets, which the
    CDC topic (acks=False) has none of: seen here as a fresh replica's first
    messages silently missing while its status table recovered. The CDC log's
    offsets are contiguous (no compaction, no transactions), so the message
    after the last one handed to the applier must come next.
    """

    rewind_limit = 30.0  # seconds of seeking back without getting the message due: a hole in the log
    reseek_every = 2.0  # seconds between seeks back while the message due does not come

    def __init__(self) -> None:
        self.last: int | None = None  # offset of the last message handed to the applier since the last seek
        self.rewound_to: int | None = None  # the offset sought back to, until a group continues from it
        self.rewound_since = 0.0
        self.rewound_at = 0.0

    def reset(self) -> None:
        self.last, self.rewound_to = None, None

    def expected(self, stored_next_offset: int) -> int:
        """The stored offset, or past the parts of a record still held in memory."""
        return stored_next_offset if self.last is None else max(stored_next_offset, self.last + 1)


_delivery = _Delivery()


def _continuing(events: Sequence[EventT], expected: int) -> int:
    """How many of ``events`` continue the log from ``expected`` without skipping an offset."""
    for index, event in enumerate(events):
        offset = event.message.offset
        if offset > expected:
            return index
        expected = max(expected, offset + 1)
    return len(events)


async def _rewind(tp: TP, delivered: int) -> None:
    """Seek back to the message due (again every few seconds); halt if the log never delivers it."""
    replica = replica_state()
    expected = _delivery.expected(replica.applier.position.next_offset)
    now = time.monotonic()
    if _delivery.rewound_to != expected:
        log.warning(
            "the consumer delivered offset %d of %s where offset %d was due: it dropped %d fetched message(s); "
            "seeking back to %d, nothing is skipped",
            delivered, tp.topic, expected, delivered - expected, expected,
        )
        _delivery.rewound_to, _delivery.rewound_since = expected, now
    elif now - _delivery.rewound_since > _delivery.rewind_limit:
        replica.halted = ApplyHalted(
            "gap", expected, f"the log delivers offset {delivered} but not offset {expected}, even after seeking back "
            f"for {_delivery.rewind_limit:.0f}s: the log has a hole",
        )
        log.critical("HALTED: gap at offset %d of %s: %s", expected, tp.topic, replica.halted.detail)
        return
    elif now - _delivery.rewound_at < _delivery.reseek_every:
        return  # messages fetched before the seek, still draining
    _delivery.rewound_at = now
    # In the consumer's own thread (a seek from this one races with its fetches), and wait for the position.
    await app.consumer.seek_wait({tp: expected})


def _log_end(events: Sequence[EventT]) -> int | None:
    tp = events[-1].message.tp
    try:
        return app.consumer.highwater(tp)
    except Exception:  # the consumer may not know a high watermark yet
        return None


@app.timer(interval=1.0)
async def track_log_end() -> None:
    """Keep the log's end current while idle, so lag and readiness follow the log, not our last group."""
    replica = replica_state()
    if not replica.resumed:
        return
    for tp in app.consumer.assignment():
        if tp.topic == cdc_topic.get_topic_name():
            if replica.halted is not None and replica.halted.reason == "log-reset" and await _continue_on_rebased_log(tp):
                continue
            try:
                _log_reset(replica.observe_log_end(app.consumer.highwater(tp), last_fetch_time(app.consumer, tp)))
            except Exception:
                await asyncio.sleep(0)


async def _continue_on_rebased_log(tp: TP) -> bool:
    """Continue on a log the master re-based, when this database holds every record the lost one did."""
    replica = replica_state()
    found = await find_rebase(settings.bootstrap_servers, tp.topic, replica.applier.auth)
    position = continued_position(replica.applier.position, found)
    if position is None:
        return False
    replica.applier.rebase(position)
    replica.halted, replica.log_end = None, None
    await app.consumer.seek_wait({tp: position.next_offset})
    _delivery.reset()
    replica.resumed = True
    log.warning("the master re-based %s on a new log; this replica holds record %d and continues from offset %d, "
                "without a snapshot", tp.topic, position.sequence, position.next_offset)
    return True


def _log_reset(halted: ApplyHalted | None) -> None:
    """Halt for a log that no longer continues this database (lost or reset), loudly and once."""
    if halted is None:
        return
    replica = replica_state()
    if replica.halted is None:
        replica.halted = halted
    elif replica.halted is not halted:
        return
    log.critical(
        "HALTED: log-reset at offset %d of %s: %s. This replica is unready until the master re-bases the cluster on a "
        "new log (it continues then, by itself, if it holds the record the new log starts after). What to do: %s.",
        halted.offset, cdc_topic.get_topic_name(), halted.detail, remedy("log-reset"),
    )
