"""The emitter: the transaction topic, forwarded to the network by ``eth_sendRawTransaction``.

An emitter is a consumer group (``TopicNames.emitter_group(EMITTER_NAME)``) on
the transaction topic; every worker configured with that name is a member, and
the members share the topic's partitions. Each partition is worked in order
(one sender's nonces stay in order), partitions side by side.

Per transaction (``Forwarder``): send to every target at once; it is delivered
as soon as one target accepted it (or already had it). Retriable failures
(``EmitError.retriable``) are retried with doubling backoff, up to
``EMIT_RETRY_FOR`` seconds; when no target took it, it goes to the dead-letter
topic with each target's reason. A "nonce too low" answer is checked against
the target: if the target has this very transaction, it was delivered before
(a resend after a crash), not rejected.

What was settled is remembered in the emitter's table (``Dedup``) before the
partition's offset is committed, so a restart (which resumes from the last
commit) does not send it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from eth_utils import keccak
from prometheus_client import CollectorRegistry, Counter

from chain.transactions import split_network_form
from emitter.targets import EmitError, NonceTooLow, RpcTarget, Sent

log = logging.getLogger("ethercattle.emitter")


class EmitterMetrics:
    """The emitter's counters, on the worker's registry (``/metrics``), or a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = CollectorRegistry() if registry is None else registry
        self.sent = Counter("ethercattle_emitter_sent", "Transactions a target accepted (or already had), by emitter and target",
                            ["emitter", "target"], registry=registry)
        self.retried = Counter("ethercattle_emitter_retried", "Sends retried after a retriable failure, by emitter and target",
                               ["emitter", "target"], registry=registry)
        self.rejected = Counter("ethercattle_emitter_rejected", "Transactions sent to the dead-letter topic, by emitter",
                                ["emitter"], registry=registry)
        self.skipped = Counter("ethercattle_emitter_skipped", "Transactions not sent again because the emitter's table holds them",
                               ["emitter"], registry=registry)


@dataclass(frozen=True)
class RetryPolicy:
    initial: float = 0.25
    """First backoff, seconds; doubles per retry."""
    maximum: float = 10.0
    """Longest backoff, seconds."""
    retry_for: float = 3600.0
    """Seconds a transaction is retried before it is given up (dead-lettered)."""

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (1-based), with +-20% jitter."""
        base = min(self.initial * 2 ** (attempt - 1), self.maximum)
        return base * random.uniform(0.8, 1.2)


@dataclass
class Delivery:
    """What became of one transaction."""

    delivered: bool
    accepted_by: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    """Each target's last failure, by target label."""
    attempts: int = 0

    @property
    def reason(self) -> str:
        return "; ".join(f"{target}: {reason}" for target, reason in self.reasons.items())


class Target(Protocol):
    label: str

    async def send(self, raw: bytes) -> Sent: ...

    async def knows(self, tx_hash: bytes) -> bool: ...


class Forwarder:
    """Sends one transaction to every target, retrying what is retriable."""

    def __init__(self, targets: Sequence[Target], policy: RetryPolicy, emitter: str = "default",
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, metrics: EmitterMetrics | None = None) -> None:
        if not targets:
            raise ValueError("an emitter needs at least one target")
        self.targets = list(targets)
        self.policy = policy
        self.emitter = emitter
        self._sleep = sleep
        self.metrics = EmitterMetrics() if metrics is None else metrics

    async def forward(self, raw: bytes, tx_hash: bytes) -> Delivery:
        delivery = Delivery(delivered=False)
        waiting = list(self.targets)
        deadline = time.monotonic() + self.policy.retry_for
        while True:
            delivery.attempts += 1
            outcomes = await asyncio.gather(*(self._try(target, raw, tx_hash) for target in waiting))
            retry: list[Target] = []
            for target, outcome in zip(waiting, outcomes):
                if isinstance(outcome, EmitError):
                    delivery.reasons[target.label] = outcome.reason
                    if outcome.retriable:
                        retry.append(target)
                else:
                    delivery.accepted_by.append(target.label)
                    delivery.reasons.pop(target.label, None)
                    self.metrics.sent.labels(self.emitter, target.label).inc()
            if delivery.accepted_by:  # in the network: targets still failing are not needed any more
                delivery.delivered = True
                return delivery
            if not retry:
                return delivery
            if time.monotonic() >= deadline:
                for target in retry:
                    delivery.reasons[target.label] = (
                        f"gave up after {delivery.attempts} attempts in {self.policy.retry_for:g}s: "
                        f"{delivery.reasons[target.label]}"
                    )
                return delivery
            for target in retry:
                self.metrics.retried.labels(self.emitter, target.label).inc()
            pause = self.policy.backoff(delivery.attempts)
            log.info("transaction 0x%s: retrying in %.2fs (%s)", tx_hash.hex(), pause, delivery.reason)
            await self._sleep(pause)
            waiting = retry

    async def _try(self, target: Target, raw: bytes, tx_hash: bytes) -> Sent | EmitError:
        try:
            return await target.send(raw)
        except NonceTooLow as too_low:
            try:  # sent before (a crash between send and table), or someone else's transaction took the nonce?
                return Sent.KNOWN if await target.knows(tx_hash) else too_low
            except EmitError as exc:
                return exc
        except EmitError as exc:
            return exc


class Dedup(Protocol):
    """The emitter's memory of settled transactions (the Faust table)."""

    def settled(self, tx_hash: bytes) -> bool: ...

    async def remember(self, tx_hash: bytes, outcome: dict[str, Any]) -> None: ...


DeadLetter = Callable[[bytes | None, bytes], Awaitable[None]]
"""``dead_letter(key, value)``: produce one record to the dead-letter topic and wait for the acknowledgement."""


def transaction_hash(raw: bytes) -> bytes:
    """The hash of a raw transaction as it travels (a blob transaction's without its sidecar)."""
    canonical, _ = split_network_form(raw)
    return keccak(canonical)


class Emitter(ConsumerRebalanceListener):  # type: ignore[misc]
    """The consumer loop of one emitter worker.

    Arguments:
        make_consumer: makes the emitter group's consumer (``broker.clients.group_member``).
        topic: the transaction topic.
        forwarder: sends one transaction.
        dedup: the table of settled transactions.
        dead_letter: produces a dead letter.
        commit_interval: seconds between offset commits (0: after every transaction).
    """

    def __init__(self, make_consumer: Callable[[], AIOKafkaConsumer], topic: str, forwarder: Forwarder, dedup: Dedup,
                 dead_letter: DeadLetter, commit_interval: float = 1.0) -> None:
        self.make_consumer = make_consumer
        self.topic = topic
        self.forwarder = forwarder
        self.dedup = dedup
        self.dead_letter = dead_letter
        self.commit_interval = commit_interval
        self.consumer: AIOKafkaConsumer | None = None
        self._tasks: dict[TopicPartition, asyncio.Task[None]] = {}
        self._settled: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._last_commit = 0.0
        self.handled = 0
        self._failure: Exception | None = None
        self._starting_over = False
        self.assigned: set[TopicPartition] = set()

    def start_over(self) -> None:
        """Read the transaction topic from its start: the master created it anew when it re-based the cluster.

        The group's committed offsets are offsets of the lost topic, and a
        broker that kept the group (or offsets committed while the topic was
        gone) would hold this emitter past the new topic's first transactions.
        """
        self._starting_over = True

    async def run(self) -> None:
        """Consume until cancelled."""
        consumer = self.make_consumer()
        self.consumer = consumer
        consumer.subscribe([self.topic], listener=self)
        await consumer.start()
        log.info("emitter %s: consuming %s, forwarding to %s", self.forwarder.emitter, self.topic,
                 ", ".join(t.label for t in self.forwarder.targets))
        try:
            while True:
                if self._failure is not None:
                    raise self._failure
                if self._starting_over and consumer.assignment():
                    await self._read_from_start(consumer)
                batches = await consumer.getmany(timeout_ms=200)
                for tp, records in batches.items():
                    if records:
                        consumer.pause(tp)  # keep polling (group liveness) while the partition is worked
                        self._tasks[tp] = asyncio.create_task(self._work(tp, records))
                await self._commit()
        finally:
            await self._stop_work(set(self._tasks))
            try:
                await self._commit(force=True)
            finally:
                await consumer.stop()

    async def _work(self, tp: TopicPartition, records: list[Any]) -> None:
        for record in records:
            try:
                await self._handle(record)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or the broker gone: stop the loop, the service starts over
                log.exception("emitter %s: failed on %s offset %d", self.forwarder.emitter, tp, record.offset)
                self._failure = exc
                return
            self._settled[tp] = record.offset + 1
            self.handled += 1
            if self.commit_interval == 0:
                await self._commit(force=True)
        self._tasks.pop(tp, None)
        if self.consumer is not None and tp in self.consumer.assignment():
            self.consumer.resume(tp)

    async def _handle(self, record: Any) -> None:
        raw: bytes = record.value or b""
        try:
            tx_hash = transaction_hash(raw)
        except Exception as exc:  # noqa: BLE001 - nothing a replica accepted should get here
            await self._dead(record, b"", f"not a transaction: {exc}", {}, 0)
            return
        if self.dedup.settled(tx_hash):
            self.forwarder.metrics.skipped.labels(self.forwarder.emitter).inc()
            log.info("transaction 0x%s already settled by this emitter; not sent again", tx_hash.hex())
            return
        delivery = await self.forwarder.forward(raw, tx_hash)
        if delivery.delivered:
            log.info("transaction 0x%s delivered to %s", tx_hash.hex(), ", ".join(delivery.accepted_by))
        else:
            await self._dead(record, tx_hash, delivery.reason, delivery.reasons, delivery.attempts)
        await self.dedup.remember(tx_hash, {
            "delivered": delivery.delivered, "targets": delivery.accepted_by, "time": time.time(),
        })

    async def _dead(self, record: Any, tx_hash: bytes, reason: str, reasons: dict[str, str], attempts: int) -> None:
        self.forwarder.metrics.rejected.labels(self.forwarder.emitter).inc()
        log.warning("transaction 0x%s rejected, to the dead-letter topic: %s", tx_hash.hex(), reason)
        letter = {
            "hash": "0x" + tx_hash.hex(),
            "sender": None if record.key is None else "0x" + bytes(record.key).hex(),
            "raw": "0x" + bytes(record.value or b"").hex(),
            "reason": reason,
            "targets": reasons,
            "attempts": attempts,
            "emitter": self.forwarder.emitter,
            "partition": record.partition,
            "offset": record.offset,
            "time": time.time(),
        }
        await self.dead_letter(record.key, json.dumps(letter).encode())

    async def _commit(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.consumer is None or (not force and now - self._last_commit < self.commit_interval):
            return
        self._last_commit = now
        due = {tp: offset for tp, offset in self._settled.items() if self._committed.get(tp) != offset}
        if not due:
            return
        try:
            await self.consumer.commit(due)
        except (KafkaError, AssertionError) as exc:  # a rebalance in progress: the table covers what is re-read
            log.info("emitter offsets not committed (%r); the table covers what is read again", exc)
            return
        self._committed.update(due)

    async def _read_from_start(self, consumer: AIOKafkaConsumer) -> None:
        """Seek every assigned partition to its start and commit there (the table keeps out what was sent already)."""
        self._starting_over = False
        assigned = set(consumer.assignment())
        await self._stop_work(assigned)
        await consumer.seek_to_beginning(*assigned)
        self._settled = {tp: await consumer.position(tp) for tp in assigned}
        self._committed.clear()
        for tp in assigned:
            consumer.resume(tp)
        await self._commit(force=True)
        log.warning("emitter %s: the cluster was re-based on new topics; reading %s from its start (partitions %s)",
                    self.forwarder.emitter, self.topic, sorted(tp.partition for tp in assigned))

    async def _stop_work(self, partitions: set[TopicPartition]) -> None:
        tasks = [self._tasks.pop(tp) for tp in partitions if tp in self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- ConsumerRebalanceListener ---------------------------------------------------------

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Stop working the revoked partitions and commit what they settled (their next owner resumes there)."""
        await self._stop_work(set(revoked))
        await self._commit(force=True)
        for tp in revoked:
            self._settled.pop(tp, None)
            self._committed.pop(tp, None)
        self.assigned -= set(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned |= set(assigned)
        log.info("emitter %s: assigned %s", self.forwarder.emitter, sorted(tp.partition for tp in assigned))


def make_targets(urls: Sequence[str], session: Any, timeout: float) -> list[RpcTarget]:
    return [RpcTarget(url, session, timeout) for url in urls]
