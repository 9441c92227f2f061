"""The emitter's decisions: what a target's answer means, retries with backoff, dead letters."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from emitter.forwarder import Emitter, Forwarder, RetryPolicy
from emitter.targets import (
    NonceTooLow,
    Sent,
    TargetRejected,
    TargetUnavailable,
    classify,
    label,
)


@pytest.mark.parametrize("error, expected", [
    ({"code": -32000, "message": "already known"}, Sent.KNOWN),
    ({"code": -32010, "message": "Transaction with the same hash was already imported."}, Sent.KNOWN),
    ({"code": -32000, "message": "nonce too low: next nonce 5, tx nonce 3"}, NonceTooLow),
    ({"code": -32000, "message": "Invalid transaction nonce: Expected 1, but got 0"}, NonceTooLow),
    ({"code": -32000, "message": "Invalid transaction nonce: Expected 1, but got 5"}, TargetRejected),
    ({"code": -32000, "message": "insufficient funds for gas * price + value: balance 0"}, TargetRejected),
    ({"code": -32000, "message": "txpool is full"}, TargetUnavailable),
    ({"code": -32000, "message": "replica not ready: lag=900"}, TargetUnavailable),
    ({"code": -32603, "message": "method handler crashed"}, TargetUnavailable),
    ({"code": -32005, "message": "daily request count exceeded"}, TargetUnavailable),
])
def test_a_targets_answer_says_whether_to_retry(error: dict[str, object], expected: object) -> None:
    verdict = classify("t", error)
    assert verdict is expected or isinstance(verdict, expected)  # type: ignore[arg-type]
    if isinstance(verdict, Exception):
        assert getattr(verdict, "retriable") is (expected is TargetUnavailable)


def test_a_target_label_hides_path_and_credentials() -> None:
    assert label("https://user:secret@mainnet.example.io/v3/APIKEY") == "https://mainnet.example.io"


class Scripted:
    """A target answering from a script: each item an exception to raise or a Sent."""

    def __init__(self, name: str, *script: object, knows: bool = False) -> None:
        self.label = name
        self.script = list(script)
        self.sends = 0
        self._knows = knows

    async def send(self, raw: bytes) -> Sent:
        self.sends += 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step  # type: ignore[return-value]

    async def knows(self, tx_hash: bytes) -> bool:
        return self._knows


async def no_sleep(seconds: float) -> None:
    pauses.append(seconds)


pauses: list[float] = []


async def test_transient_failures_are_retried_with_growing_backoff_until_delivered() -> None:
    pauses.clear()
    down = TargetUnavailable("t", "connection refused")
    target = Scripted("t", down, down, down, Sent.ACCEPTED)
    delivery = await Forwarder([target], RetryPolicy(0.1, 1.0, 60), sleep=no_sleep).forward(b"raw", b"h")
    assert delivery.delivered and delivery.attempts == 4 and target.sends == 4
    assert pauses[0] < pauses[1] < pauses[2] <= 1.2


async def test_a_permanent_rejection_is_not_retried() -> None:
    target = Scripted("t", TargetRejected("t", "insufficient funds"))
    delivery = await Forwarder([target], RetryPolicy(0.1, 1.0, 60), sleep=no_sleep).forward(b"raw", b"h")
    assert not delivery.delivered and target.sends == 1
    assert delivery.reason == "t: insufficient funds"


async def test_nonce_too_low_for_a_transaction_the_target_has_is_a_delivery() -> None:
    resent = Scripted("t", NonceTooLow("t", "nonce too low"), knows=True)
    assert (await Forwarder([resent], RetryPolicy(), sleep=no_sleep).forward(b"raw", b"h")).delivered
    taken = Scripted("t", NonceTooLow("t", "nonce too low"), knows=False)
    assert not (await Forwarder([taken], RetryPolicy(), sleep=no_sleep).forward(b"raw", b"h")).delivered


async def test_one_accepting_target_is_enough_and_retries_give_up_after_retry_for() -> None:
    down = TargetUnavailable("a", "HTTP 503")
    delivery = await Forwarder([Scripted("a", down), Scripted("b", Sent.ACCEPTED)], RetryPolicy(), sleep=no_sleep).forward(b"r", b"h")
    assert delivery.delivered and delivery.accepted_by == ["b"]
    gave_up = await Forwarder([Scripted("a", down)], RetryPolicy(0.01, 0.01, 0.0), sleep=no_sleep).forward(b"r", b"h")
    assert not gave_up.delivered and "gave up after 1 attempts" in gave_up.reason


class Stop(Exception):
    """Ends the emitter's consumer loop in a test."""


class AssignedConsumer:
    """A group consumer holding ``partitions`` at ``position``; ``getmany`` ends the loop on its ``rounds``-th call."""

    def __init__(self, partitions: list[TopicPartition], position: int, rounds: int = 2) -> None:
        self.positions = dict.fromkeys(partitions, position)
        self.commits: list[dict[TopicPartition, int]] = []
        self.rounds = rounds

    def subscribe(self, topics: list[str], listener: object) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.positions[tp] = 0

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def resume(self, tp: TopicPartition) -> None:
        pass

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[object]]:
        self.rounds -= 1
        if self.rounds <= 0:
            raise Stop
        return {}


class NoDedup:
    def settled(self, tx_hash: bytes) -> bool:
        return False

    async def remember(self, tx_hash: bytes, outcome: dict[str, object]) -> None:
        pass


async def no_dead_letter(key: bytes | None, value: bytes) -> None:
    pass


async def test_an_emitter_told_to_start_over_reads_every_assigned_partition_from_its_start_and_commits_there() -> None:
    partitions = [TopicPartition("ethercattle.main.transactions", p) for p in range(4)]
    consumer = AssignedConsumer(partitions, position=7)
    emitter = Emitter(lambda: consumer, "ethercattle.main.transactions", Forwarder([Scripted("t", Sent.ACCEPTED)], RetryPolicy()),
                      NoDedup(), no_dead_letter, commit_interval=0)
    emitter.start_over()
    with pytest.raises(Stop):
        await emitter.run()
    assert consumer.positions == dict.fromkeys(partitions, 0)
    assert consumer.commits[0] == dict.fromkeys(partitions, 0)
