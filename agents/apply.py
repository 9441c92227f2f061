"""The apply agent: the CDC log into this replica's LevelDB.

Faust owns the consumer, but not the position: on assignment the agent checks
the stored position against the log (and refuses to start when the log cannot
continue it), then seeks there. Groups of messages are applied in one LevelDB
write each. On a message it may not apply the agent halts loudly and for good:
it logs what and where, the replica turns unready, and it never skips.

``ApplyAgent`` holds that logic over a small consumer interface, so it runs
(and is tested) without Faust; ``register`` wires it to the worker's app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, AsyncGenerator, AsyncIterator, Awaitable, Callable, Protocol, Sequence, TypeVar

import faust
from aiokafka.errors import KafkaError
from faust.types import TP, EventT, StreamT

from broker.transport import last_fetch_time
from cluster.settings import Settings
from replica.applier import ApplyHalted, remedy
from replica.position import Position
from replica.rebase import continued_position, find_rebase
from replica.resume import LogProbe, ResumeRefused, check_resume, probe_log
from replica.state import ReplicaState

log = logging.getLogger("ethercattle.apply")

Prober = Callable[[str, Position], Awaitable[LogProbe]]
"""``probe(topic, position)``: the log's bounds and the message before the stored offset."""


class CdcConsumer(Protocol):
    """What the agent asks of the consumer that delivers the CDC topic (Faust's, in a worker)."""

    async def seek_wait(self, partitions: dict[TP, int]) -> None: ...

    def highwater(self, tp: TP) -> int | None: ...

    def assignment(self) -> set[TP]: ...


class Delivery:
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
    stall_after = 5.0  # seconds without any delivery while behind the log's end before seeking again

    def __init__(self) -> None:
        self.last: int | None = None  # offset of the last message handed to the applier since the last seek
        self.rewound_to: int | None = None  # the offset sought back to, until a group continues from it
        self.rewound_since = 0.0
        self.rewound_at = 0.0
        self.delivered_at = 0.0  # when the consumer last delivered a group or was sought, monotonic seconds

    def reset(self) -> None:
        self.last, self.rewound_to = None, None

    def expected(self, stored_next_offset: int) -> int:
        """The stored offset, or past the parts of a record still held in memory."""
        return stored_next_offset if self.last is None else max(stored_next_offset, self.last + 1)


def continuing(events: Sequence[EventT], expected: int) -> int:
    """How many of ``events`` continue the log from ``expected`` without skipping an offset."""
    for index, event in enumerate(events):
        offset = event.message.offset
        if offset > expected:
            return index
        expected = max(expected, offset + 1)
    return len(events)


T = TypeVar("T")


async def _window(group: list[T], full: asyncio.Event, filling: asyncio.Future[None], within: float) -> None:
    """Let ``group`` fill for ``within`` seconds from now, or less: until it is full, ``items`` ended, or a lull.

    Messages come in bursts (a fetch response at a time, a replica catching up
    streams them back to back): a fifth of ``within`` without a new one means the
    burst is in, and waiting longer would only delay what it carries.
    """
    loop = asyncio.get_running_loop()
    closes = loop.time() + within
    while group and not full.is_set() and not filling.done():
        wait = min(within / 5, closes - loop.time())
        if wait <= 0:
            return
        heard = len(group)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(full.wait(), wait)
        if len(group) == heard:
            return


async def groups(items: AsyncIterator[T], most: int, within: float) -> AsyncGenerator[list[T], None]:
    """Consecutive ``items`` in groups of at most ``most``, each closed at most ``within`` seconds after its first
    item (earlier when a fifth of ``within`` passes without another).

    A group waits for its first item as long as it takes, without a timer, so an
    idle stream costs nothing: Faust's ``take_events`` flushes on a fixed period
    instead, and woke an idle replica's event loop every APPLY_WITHIN_MS (100 times
    a second). A task drains ``items`` into the group while the last one is
    applied (as ``take_events`` does, and with no task or timer per item); it
    stops taking at ``most`` until the group is handed on.
    """
    group: list[T] = []
    arrived, full, room = asyncio.Event(), asyncio.Event(), asyncio.Event()
    room.set()

    async def fill() -> None:
        try:
            async for item in items:
                await room.wait()
                group.append(item)
                arrived.set()
                if len(group) >= most:
                    full.set()
                    room.clear()
        finally:
            arrived.set()  # the end of ``items`` (or its error) wakes the last wait

    filling = asyncio.ensure_future(fill())
    try:
        while True:
            if not filling.done():
                await arrived.wait()
            await _window(group, full, filling, within)
            if not group:
                filling.result()  # raises what ended ``items``, if anything did
                return
            taken = group[:]
            group.clear()
            arrived.clear()
            full.clear()
            room.set()
            yield taken
    finally:
        filling.cancel()


class ApplyAgent:
    """Applies the CDC topic to the replica's database; halts on what it may not apply.

    Arguments:
        replica: the replica's state (its applier, position, halt).
        settings: group size and wait of the apply loop.
        topic: the CDC topic's name.
        consumer: returns the consumer delivering the topic (Faust's, once the worker started).
        probe: reads the log's bounds on assignment (default: a groupless probe of the broker).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, replica: ReplicaState, settings: Settings, topic: str, consumer: Callable[[], CdcConsumer],
                 probe: Prober | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.replica = replica
        self.settings = settings
        self.topic = topic
        self.consumer = consumer
        self.probe = probe or (lambda topic, position: probe_log(settings.bootstrap_servers, topic, position))
        self.clock = clock
        self.delivery = Delivery()

    # -- assignment ------------------------------------------------------------------

    async def on_assigned(self, assigned: set[TP]) -> None:
        """Check the stored position against the log and seek there; refuse a log that cannot continue it.

        Raises ``ResumeRefused`` on the first assignment of a process whose log
        cannot continue its database; a running replica re-assigned to such a
        log halts instead (it stays up, unready, and says why).
        """
        replica = self.replica
        for tp in assigned:
            if tp.topic != self.topic:
                continue
            position = replica.applier.position
            try:
                probe = await self.probe(self.topic, position)
            except KafkaError as exc:
                if not replica.resumed:
                    raise
                # a running replica re-assigned while the broker flaps: keep the stored position, check the log's end as it comes
                log.warning("could not check %s on re-assignment (%r); resuming at the stored offset %d",
                            self.topic, exc, position.next_offset)
                await self._seek(tp, position.next_offset)
                continue
            try:
                check_resume(position, probe, self.topic)
            except ResumeRefused as refused:
                if await self.continue_on_rebased_log(tp):
                    continue
                if replica.resumed:  # a running replica re-assigned (the broker came back): stay up, unready, and say why
                    self.log_reset(ApplyHalted("log-reset", position.next_offset, str(refused)))
                    return
                log.critical("refusing to start: %s", refused)
                raise
            self.log_reset(replica.observe_log_end(probe.end))
            await self._seek(tp, position.next_offset)
            replica.resumed = True
            log.info("resuming %s at offset %d (record %d); log holds offsets %d..%d",
                     self.topic, position.next_offset, position.sequence, probe.earliest, probe.end)

    async def _seek(self, tp: TP, offset: int) -> None:
        # In the consumer's own thread: Faust may already fetch this partition (its recovery can finish
        # before the probe does), and a seek from this thread races with the fetcher (seen: a KeyError
        # inside aiokafka that stopped the worker).
        await self.consumer().seek_wait({tp: offset})
        self.delivery.reset()
        self.delivery.delivered_at = self.clock()

    # -- applying --------------------------------------------------------------------

    async def take(self, events: Sequence[EventT]) -> None:
        """One group of delivered messages: apply what continues the log; seek back over what was dropped."""
        replica = self.replica
        self.delivery.delivered_at = self.clock()
        if replica.halted is not None:
            return
        count = continuing(events, self.delivery.expected(replica.applier.position.next_offset))
        if count:
            self._apply(events[:count])
        if count == len(events):
            self.delivery.rewound_to = None
        elif replica.halted is None:
            await self._rewind(events[count].message.tp, events[count].message.offset)

    def _apply(self, events: Sequence[EventT]) -> None:
        replica = self.replica
        try:
            # a message without a value (a tombstone) is not an envelope: the codec refuses it as corrupt
            outcome = replica.applier.apply([(event.message.offset, event.message.value or b"") for event in events])
        except ApplyHalted as halted:
            replica.halted = halted
            log.critical(
                "HALTED: %s record at offset %d of %s: %s. This replica applies nothing more and is unready. What to do: %s.",
                halted.reason, halted.offset, self.topic, halted.detail, remedy(halted.reason),
            )
            return
        self.delivery.last = max(self.delivery.last or 0, events[-1].message.offset)
        tp = events[-1].message.tp
        self.log_reset(replica.observe_log_end(self._highwater(tp), last_fetch_time(self.consumer(), tp)))
        replica.applied(outcome)

    async def _rewind(self, tp: TP, delivered: int) -> None:
        """Seek back to the message due (again every few seconds); halt if the log never delivers it."""
        replica, delivery = self.replica, self.delivery
        expected = delivery.expected(replica.applier.position.next_offset)
        now = self.clock()
        if delivery.rewound_to != expected:
            log.warning(
                "the consumer delivered offset %d of %s where offset %d was due: it dropped %d fetched message(s); "
                "seeking back to %d, nothing is skipped",
                delivered, tp.topic, expected, delivered - expected, expected,
            )
            delivery.rewound_to, delivery.rewound_since = expected, now
        elif now - delivery.rewound_since > delivery.rewind_limit:
            replica.halted = ApplyHalted(
                "gap", expected, f"the log delivers offset {delivered} but not offset {expected}, even after seeking back "
                f"for {delivery.rewind_limit:.0f}s: the log has a hole",
            )
            log.critical("HALTED: gap at offset %d of %s: %s", expected, tp.topic, replica.halted.detail)
            return
        elif now - delivery.rewound_at < delivery.reseek_every:
            return  # messages fetched before the seek, still draining
        delivery.rewound_at = now
        await self.consumer().seek_wait({tp: expected})

    # -- the log's end ---------------------------------------------------------------

    def _highwater(self, tp: TP) -> int | None:
        try:
            return self.consumer().highwater(tp)
        except Exception:  # the consumer may not know a high watermark yet
            return None

    async def track_log_end(self) -> None:
        """Keep the log's end current while idle, so lag and readiness follow the log, not our last group."""
        if not self.replica.resumed:
            return
        consumer = self.consumer()
        for tp in consumer.assignment():
            if tp.topic == self.topic:
                if self.replica.halted is not None and self.replica.halted.reason == "log-reset" and await self.continue_on_rebased_log(tp):
                    continue
                end = self._highwater(tp)
                if end is not None:
                    self.log_reset(self.replica.observe_log_end(end, last_fetch_time(consumer, tp)))
                await self._unstall(tp)

    async def _unstall(self, tp: TP) -> None:
        """Seek to the message due when the consumer delivers nothing while the log holds more.

        Seen here: a replica starting while another of its cluster ran got nothing
        after its resume seek (Faust's own seek to committed offsets ran after it,
        and the CDC topic has none), and sat behind the log's end for good, silent.
        """
        replica, delivery = self.replica, self.delivery
        if replica.halted is not None or not replica.lag:
            return
        now = self.clock()
        if now - delivery.delivered_at < delivery.stall_after:
            return
        expected = delivery.expected(replica.applier.position.next_offset)
        log.warning("nothing of %s delivered for %.0fs while %d message(s) behind its end; seeking to offset %d again",
                    tp.topic, now - delivery.delivered_at, replica.lag, expected)
        delivery.delivered_at = now
        await self.consumer().seek_wait({tp: expected})

    async def continue_on_rebased_log(self, tp: TP) -> bool:
        """Continue on a log the master re-based, when this database holds every record the lost one did."""
        replica = self.replica
        found = await find_rebase(self.settings.bootstrap_servers, tp.topic, replica.applier.auth)
        position = continued_position(replica.applier.position, found)
        if position is None:
            return False
        replica.applier.rebase(position)
        replica.halted, replica.log_end = None, None
        await self._seek(tp, position.next_offset)
        replica.resumed = True
        log.warning("the master re-based %s on a new log; this replica holds record %d and continues from offset %d, "
                    "without a snapshot", tp.topic, position.sequence, position.next_offset)
        for start_over in replica.rebased:
            start_over()
        return True

    def log_reset(self, halted: ApplyHalted | None) -> None:
        """Halt for a log that no longer continues this database (lost or reset), loudly and once."""
        if halted is None:
            return
        replica = self.replica
        if replica.halted is None:
            replica.halted = halted
        elif replica.halted is not halted:
            return
        log.critical(
            "HALTED: log-reset at offset %d of %s: %s. This replica is unready until the master re-bases the cluster on a "
            "new log (it continues then, by itself, if it holds the record the new log starts after). What to do: %s.",
            halted.offset, self.topic, halted.detail, remedy("log-reset"),
        )


def register(app: faust.App, topic: faust.TopicT, agent: ApplyAgent) -> None:
    """Run ``agent`` on ``app``: the apply stream, the assignment check, and the idle log-end timer."""

    async def on_partitions_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        try:
            await agent.on_assigned(assigned)
        except ResumeRefused as refused:
            await app.crash(refused)
            raise

    async def apply(stream: StreamT) -> None:
        settings = agent.settings
        grouped = groups(aiter(stream.events()), settings.apply_batch_messages, settings.apply_within_ms / 1000)
        async with contextlib.aclosing(grouped):  # closed with the agent, so its draining task stops too
            async for events in grouped:
                await agent.take(events)

    app.on_partitions_assigned.connect(on_partitions_assigned)  # type: ignore[arg-type]  # mode's stub demands a keyword-only `signal`
    app.agent(topic, name="ethercattle.apply")(apply)
    app.timer(interval=1.0, name="ethercattle.apply.track_log_end")(agent.track_log_end)
