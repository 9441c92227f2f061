"""The apply agent without Faust: it applies what continues the log, seeks back over what the consumer
dropped, and halts (never skips) on what it may not apply or a log that cannot continue its database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
from faust.types import TP

from agents.apply import ApplyAgent, groups
from cluster.record import Authenticator, Record, encode_record, encode_records
from cluster.settings import Settings
from replica.position import Position
from replica.resume import LogProbe, ResumeRefused
from replica.state import ReplicaState

SECRET = "a-cluster-secret-0123"
AUTH = Authenticator.for_cluster(SECRET, "main")
TOPIC = "ethercattle.main.cdc"
PARTITION = TP(TOPIC, 0)


def message(sequence: int, auth: Authenticator = AUTH) -> bytes:
    return encode_records(auth, "m", [encode_record(Record(sequence, ((b"k%d" % sequence, b"v"),)))])


@dataclass(frozen=True)
class Message:
    offset: int
    value: bytes
    tp: TP = PARTITION


@dataclass(frozen=True)
class Event:
    message: Message


def events(*offsets: int) -> list[Event]:
    """Messages at ``offsets`` of a log whose message at offset n carries record n + 1."""
    return [Event(Message(offset, message(offset + 1))) for offset in offsets]


@dataclass
class Consumer:
    """The consumer as the agent sees it: records its seeks, knows the log's end."""

    end: int = 0
    seeks: list[int] = field(default_factory=list)

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.extend(partitions.values())

    def highwater(self, tp: TP) -> int | None:
        return self.end

    def assignment(self) -> set[TP]:
        return {PARTITION}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[ReplicaState]:
    state = ReplicaState.open(Settings(broker="kafka://127.0.0.1:1", cluster="main", datadir=tmp_path, secret=SECRET,
                                       replica_id="r1"))
    yield state
    state.db.close()


def agent_for(replica: ReplicaState, consumer: Consumer, clock: Clock | None = None,
              probe: LogProbe | None = None) -> ApplyAgent:
    async def probing(topic: str, position: Position) -> LogProbe:
        assert probe is not None
        return probe

    return ApplyAgent(replica, replica.settings, TOPIC, lambda: consumer, probing, clock or Clock())


def test_a_group_that_continues_the_log_is_applied_and_moves_the_position(replica: ReplicaState) -> None:
    consumer = Consumer(end=3)
    asyncio.run(agent_for(replica, consumer).take(events(0, 1, 2)))
    assert (replica.applier.position.sequence, replica.applier.position.next_offset) == (3, 3)
    assert replica.lag == 0 and replica.caught_up and consumer.seeks == []


def test_a_dropped_message_is_sought_back_to_and_nothing_after_it_is_applied(replica: ReplicaState) -> None:
    consumer = Consumer(end=5)
    agent = agent_for(replica, consumer)
    asyncio.run(agent.take(events(0, 1, 3, 4)))  # offset 2 never came
    assert replica.applier.position.next_offset == 2
    assert consumer.seeks == [2] and replica.halted is None


def test_messages_fetched_before_the_seek_back_drain_without_another_seek(replica: ReplicaState) -> None:
    consumer, clock = Consumer(end=5), Clock()
    agent = agent_for(replica, consumer, clock)
    asyncio.run(agent.take(events(3)))
    clock.now += 1.0
    asyncio.run(agent.take(events(4)))
    assert consumer.seeks == [0]
    clock.now += agent.delivery.reseek_every
    asyncio.run(agent.take(events(4)))
    assert consumer.seeks == [0, 0]


def test_the_log_continuing_after_a_seek_back_clears_the_rewind(replica: ReplicaState) -> None:
    consumer = Consumer(end=3)
    agent = agent_for(replica, consumer)
    asyncio.run(agent.take(events(1, 2)))
    asyncio.run(agent.take(events(0, 1, 2)))
    assert replica.applier.position.next_offset == 3 and agent.delivery.rewound_to is None


def test_a_message_that_never_comes_halts_as_a_gap_after_the_rewind_limit(replica: ReplicaState) -> None:
    consumer, clock = Consumer(end=5), Clock()
    agent = agent_for(replica, consumer, clock)
    asyncio.run(agent.take(events(1)))
    clock.now += agent.delivery.rewind_limit + 1
    asyncio.run(agent.take(events(1)))
    assert replica.halted is not None and replica.halted.reason == "gap" and replica.halted.offset == 0
    asyncio.run(agent.take(events(0, 1)))  # halted for good: nothing more is applied
    assert replica.applier.position.next_offset == 0


def test_a_forged_record_is_skipped_and_the_records_after_it_apply(replica: ReplicaState) -> None:
    forger = Authenticator.for_cluster("another-secret-012345", "main")
    forged = [Event(Message(0, message(1))), Event(Message(1, message(2, forger))), Event(Message(2, message(2)))]
    asyncio.run(agent_for(replica, Consumer(end=3)).take(forged))
    assert replica.halted is None and replica.strays_skipped == {"forged": 1}
    assert (replica.applier.position.sequence, replica.applier.position.next_offset) == (2, 3)


def test_a_fresh_replica_seeks_to_its_stored_offset_when_the_log_continues_it(replica: ReplicaState) -> None:
    consumer = Consumer()
    agent = agent_for(replica, consumer, probe=LogProbe(partitions=1, earliest=0, end=7, previous=None))
    asyncio.run(agent.on_assigned({PARTITION, TP("another-topic", 0)}))
    assert consumer.seeks == [0] and replica.resumed and replica.log_end == 7


def test_a_fresh_replica_refuses_to_start_on_a_log_that_cannot_continue_it(replica: ReplicaState) -> None:
    asyncio.run(agent_for(replica, Consumer(end=2)).take(events(0, 1)))
    replica.resumed = False  # as a new process over this database
    probe = LogProbe(partitions=1, earliest=5, end=9, previous=None)  # offsets 2..4 left retention
    with pytest.raises(ResumeRefused, match="left retention"):
        asyncio.run(agent_for(replica, Consumer(), probe=probe).on_assigned({PARTITION}))
    assert replica.halted is None


def test_a_running_replica_reassigned_to_a_reset_log_halts_and_stays_up(replica: ReplicaState) -> None:
    consumer = Consumer(end=2)
    asyncio.run(agent_for(replica, consumer).take(events(0, 1)))
    replica.resumed = True
    reset = LogProbe(partitions=1, earliest=0, end=0, previous=None)  # the broker came back empty
    asyncio.run(agent_for(replica, consumer, probe=reset).on_assigned({PARTITION}))
    assert replica.halted is not None and replica.halted.reason == "log-reset"


def test_a_log_whose_end_falls_below_what_was_applied_halts_as_reset(replica: ReplicaState) -> None:
    consumer = Consumer(end=2)
    agent = agent_for(replica, consumer)
    asyncio.run(agent.take(events(0, 1)))
    replica.resumed = True
    consumer.end = 0
    asyncio.run(agent.track_log_end())
    assert replica.halted is not None and replica.halted.reason == "log-reset"


def test_a_consumer_that_delivers_nothing_while_the_log_holds_more_is_sought_again(replica: ReplicaState) -> None:
    consumer, clock = Consumer(end=2), Clock()
    agent = agent_for(replica, consumer, clock, probe=LogProbe(partitions=1, earliest=0, end=2, previous=None))
    asyncio.run(agent.on_assigned({PARTITION}))
    clock.now += agent.delivery.stall_after - 1
    asyncio.run(agent.track_log_end())
    assert consumer.seeks == [0]  # resumed, not yet stalled
    clock.now += 2
    asyncio.run(agent.track_log_end())
    assert consumer.seeks == [0, 0]
    asyncio.run(agent.take(events(0, 1)))
    clock.now += agent.delivery.stall_after + 1
    asyncio.run(agent.track_log_end())
    assert consumer.seeks == [0, 0]  # caught up: nothing is due


# -- groups: how the stream's events become apply groups -----------------------------------------

WITHIN = 0.05


async def queued(queue: asyncio.Queue[Event | None]) -> AsyncIterator[Event]:
    """The events put on ``queue``, until a None."""
    while (event := await queue.get()) is not None:
        yield event


async def test_waiting_for_a_groups_first_event_arms_no_timer() -> None:
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    waiting = asyncio.ensure_future(anext(groups(queued(queue), 10, WITHIN)))
    for _ in range(10):
        await asyncio.sleep(0)  # no timer of its own: only the group's wait can arm one
    loop = asyncio.get_running_loop()
    assert not waiting.done()
    assert [handle for handle in loop._scheduled if not handle.cancelled()] == []  # type: ignore[attr-defined]
    waiting.cancel()


async def test_events_coming_close_together_after_an_idle_spell_form_one_group() -> None:
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    first = asyncio.ensure_future(anext(groups(queued(queue), 10, within=0.5)))
    await asyncio.sleep(0.15)  # idle: no group, empty or not, is handed on
    assert not first.done()
    queue.put_nowait(events(0)[0])
    await asyncio.sleep(0.02)  # well within the lull that closes a group (a fifth of the window)
    queue.put_nowait(events(1)[0])
    assert [event.message.offset for event in await first] == [0, 1]


async def test_a_group_closes_after_a_lull_without_waiting_out_its_window() -> None:
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    queue.put_nowait(events(0)[0])
    loop = asyncio.get_running_loop()
    started = loop.time()
    group = await anext(groups(queued(queue), 10, within=2.0))
    assert [event.message.offset for event in group] == [0]
    assert loop.time() - started < 1.0  # the lull (0.4 s), not the window (2 s)


async def test_a_group_closes_at_its_window_while_events_keep_coming() -> None:
    queue: asyncio.Queue[Event | None] = asyncio.Queue()

    async def steady() -> None:
        for offset in range(200):
            queue.put_nowait(events(offset)[0])
            await asyncio.sleep(0.002)

    feeding = asyncio.ensure_future(steady())
    loop = asyncio.get_running_loop()
    started = loop.time()
    group = await anext(groups(queued(queue), 1000, within=0.1))
    assert loop.time() - started < 0.3 and len(group) < 200
    feeding.cancel()


async def test_a_group_closes_at_its_size_limit_without_waiting_for_its_window() -> None:
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    for event in events(0, 1, 2, 3, 4):
        queue.put_nowait(event)
    grouped = groups(queued(queue), 2, within=60.0)
    sizes = [len(await asyncio.wait_for(anext(grouped), 1.0)) for _ in range(2)]
    assert sizes == [2, 2]


async def test_the_event_awaited_when_a_window_closes_starts_the_next_group() -> None:
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    queue.put_nowait(events(0)[0])
    grouped = groups(queued(queue), 10, WITHIN)
    assert [event.message.offset for event in await anext(grouped)] == [0]
    queue.put_nowait(events(1)[0])
    queue.put_nowait(None)
    assert [[event.message.offset for event in group] async for group in grouped] == [[1]]


async def test_what_ends_the_stream_reaches_the_applier_after_the_group_before_it() -> None:
    async def breaking() -> AsyncIterator[Event]:
        yield events(0)[0]
        raise RuntimeError("the stream broke")

    grouped = groups(breaking(), 10, WITHIN)
    assert len(await anext(grouped)) == 1
    with pytest.raises(RuntimeError, match="the stream broke"):
        await anext(grouped)
