"""Prometheus metrics of a replica process, on a registry of its own.

Two kinds live here:

- what the apply agent and the RPC observe as they go (apply latency,
  delivery delay of heartbeats, RPC requests by method and status with their
  latency): histograms and counters fed by the state's listeners and ``record_rpc``;
- what the replica's state says at scrape time (records and bytes applied,
  position, lag, head number and age, heartbeat age, readiness and each check):
  read by ``ReplicaCollector`` when ``/metrics`` is scraped, so a gauge is never stale.

Each replica worker has its own registry (``ReplicaMetrics.registry``);
``exposition()`` renders it in the Prometheus text format.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chain.head import read_head
from replica.applier import ApplyOutcome
from replica.readiness import broker_silence, checks, highest_block
from replica.state import ReplicaState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_METHOD_LABELS = 256
"""Distinct RPC method labels kept; any further name counts as ``other`` (clients send anything)."""


class ReplicaCollector(Collector):
    """Reads a replica's live state at scrape time, so a gauge is never stale."""

    def __init__(self, replica: ReplicaState) -> None:
        self.replica = replica

    def collect(self) -> Iterator[Metric]:
        replica = self.replica
        now = time.time()
        settings = replica.settings

        def gauge(name: str, documentation: str, value: float | int | None) -> Iterator[Metric]:
            if value is not None:
                yield GaugeMetricFamily(name, documentation, value=value)

        info = GaugeMetricFamily("ethercattle_replica_info", "This replica's identity", labels=["replica", "cluster"])
        info.add_metric([settings.replica_id or "", settings.cluster], 1)
        yield info
        yield CounterMetricFamily("ethercattle_applied_records", "Records applied by this process", value=replica.records_applied)
        yield CounterMetricFamily("ethercattle_applied_bytes", "Bytes of records applied by this process", value=replica.bytes_applied)
        yield CounterMetricFamily("ethercattle_duplicates_skipped", "Duplicate records skipped by this process", value=replica.duplicates_skipped)
        strays = CounterMetricFamily(
            "ethercattle_stray_messages", "CDC messages skipped by this process as not part of the log (failed authentication), by reason",
            labels=["reason"])
        for reason, count in sorted(replica.strays_skipped.items()):
            strays.add_metric([reason], count)
        yield strays
        position = replica.applier.position
        yield from gauge("ethercattle_applied_sequence", "Sequence number of the last record applied", position.sequence)
        yield from gauge("ethercattle_next_offset", "Kafka offset of the next CDC message to apply", position.next_offset)
        yield from gauge("ethercattle_log_end_offset", "Kafka offset past the CDC log's last message, as last seen", replica.log_end)
        yield from gauge("ethercattle_lag_messages", "CDC messages between the stored position and the log's end", replica.lag)
        current = read_head(replica.db)
        if current is not None:
            yield from gauge("ethercattle_head_number", "Number of this replica's head block", current.number)
            yield from gauge("ethercattle_head_age_seconds", "Age of this replica's head block (its timestamp to now)", max(now - current.timestamp, 0.0))
        yield from gauge("ethercattle_master_head_number", "The master's head number from the newest heartbeat seen", highest_block(replica))
        if replica.heartbeat is not None:
            yield from gauge("ethercattle_heartbeat_age_seconds", "Age of the last master heartbeat applied", max(now - replica.heartbeat.clock, 0.0))
        yield from gauge("ethercattle_broker_silence_seconds", "Seconds since the broker last answered a fetch (or a group was applied)", broker_silence(replica, now))
        yield from gauge("ethercattle_caught_up", "1 once the initial catch-up reached the log's end", int(replica.caught_up))
        results = checks(replica, now)
        yield from gauge("ethercattle_ready", "1 when /readyz says ready", int(all(check.ok for check in results)))
        per_check = GaugeMetricFamily("ethercattle_readiness_check", "1 when the readiness check passes", labels=["check"])
        for check in results:
            per_check.add_metric([check.name], int(check.ok))
        yield per_check
        loaded = GaugeMetricFamily("ethercattle_shared_view_loaded", "1 once the view read its cluster-wide topic up to the end it first saw", labels=["view"])
        timeouts = CounterMetricFamily("ethercattle_shared_view_barrier_timeouts", "Calls that stopped waiting for the view to catch up with its topic", labels=["view"])
        for name, view in replica.shared_views.items():
            loaded.add_metric([name], int(view.loaded))
            timeouts.add_metric([name], view.barrier_timeouts)
        yield loaded
        yield timeouts
        halted = GaugeMetricFamily("ethercattle_halted", "1 when the apply agent halted, by reason", labels=["reason"])
        if replica.halted is not None:
            halted.add_metric([replica.halted.reason], 1)
        yield halted


class Readings(Collector):
    """Values read off live objects at scrape time: ``(name, "gauge" | "counter", help, read)``."""

    def __init__(self, readings: list["Reading"]) -> None:
        self.readings = readings

    def collect(self) -> Iterator[Metric]:
        for name, kind, documentation, read in self.readings:
            family = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
            yield family(name, documentation, value=read())


Reading = tuple[str, str, str, Callable[[], float]]
"""``(name, "gauge" | "counter", help, read)``: a value read off a live object at scrape time."""


class Bound(NamedTuple):
    """A structure that grows with what clients or the cluster do, and the limit that holds it."""

    structure: str
    unit: str
    """What ``size`` and ``limit`` count: "entries" or "bytes"."""
    size: Callable[[], float]
    limit: float


class Bounds(Collector):
    """``ethercattle_bounded_size`` beside ``ethercattle_bounded_limit``, per structure: an operator
    sees each cache fill up to its limit and stop there, and which one a memory change comes from."""

    def __init__(self, bounds: list[Bound]) -> None:
        self.bounds = bounds

    def collect(self) -> Iterator[Metric]:
        labels = ["structure", "unit"]
        sizes = GaugeMetricFamily("ethercattle_bounded_size", "Current size of a bounded cache or per-client structure", labels=labels)
        limits = GaugeMetricFamily("ethercattle_bounded_limit", "The most that structure holds", labels=labels)
        for bound in self.bounds:
            sizes.add_metric([bound.structure, bound.unit], bound.size())
            limits.add_metric([bound.structure, bound.unit], bound.limit)
        yield sizes
        yield limits


class ReplicaMetrics:
    """The Prometheus registry of one replica worker, and what feeds it.

    Built by the composition root with the replica's state: the state is read at
    scrape time (``ReplicaCollector``), each applied group feeds the apply
    histograms, the dispatcher reports each call to ``record_rpc``, and other
    pieces (the subscription hub, the emitter) put their readings or counters on
    ``registry``.
    """

    def __init__(self, replica: ReplicaState, max_method_labels: int = MAX_METHOD_LABELS) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.max_method_labels = max_method_labels
        self.apply_seconds = Histogram(
            "ethercattle_apply_seconds",
            "Seconds the apply agent spent on one group of messages (decode, checks and the LevelDB write)",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.apply_group_records = Histogram(
            "ethercattle_apply_group_records",
            "Records applied per LevelDB write",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
            registry=self.registry,
        )
        self.heartbeat_delay = Histogram(
            "ethercattle_heartbeat_delay_seconds",
            "Seconds from a master heartbeat (master clock) to its apply on this replica: log delivery latency plus clock skew",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
        self.rpc_requests = Counter(
            "ethercattle_rpc_requests",
            "JSON-RPC calls answered, by method and status (ok, or the JSON-RPC error code)",
            ["method", "status"],
            registry=self.registry,
        )
        self.rpc_seconds = Histogram(
            "ethercattle_rpc_request_seconds",
            "Seconds to answer one JSON-RPC call, by method and status",
            ["method", "status"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self._methods: set[str] = set()
        self._methods_lock = threading.Lock()
        self._rpc_series: dict[tuple[str, str | int], tuple[Any, Any]] = {}
        """The (calls, seconds) series of each (method, status) seen: ``labels()`` looks
        them up under a lock with its own key checks, a few microseconds per call."""
        self.registry.register(ReplicaCollector(replica))
        replica.listeners.append(self.observe_apply)

    def method_label(self, method: str) -> str:
        if method in self._methods:
            return method
        with self._methods_lock:
            if len(self._methods) < self.max_method_labels and len(method) <= 64 and method.isprintable():
                self._methods.add(method)
                return method
        return "other"

    def record_rpc(self, method: str, status: str | int, seconds: float) -> None:
        """Count one JSON-RPC call: ``status`` is ``"ok"`` or the error code (e.g. -32000).

        Called once per call of a batch by the dispatcher; thread-safe. Method names
        beyond the first ``max_method_labels`` distinct ones count as ``other``.
        """
        series = self._rpc_series.get((method, status))
        if series is None:
            labels = (self.method_label(method), str(status))
            series = self.rpc_requests.labels(*labels), self.rpc_seconds.labels(*labels)
            if labels[0] != "other":  # bounded as the label values are: unknown names are not kept
                self._rpc_series[(method, status)] = series
        calls, duration = series
        calls.inc()
        duration.observe(seconds)

    def observe_apply(self, outcome: ApplyOutcome, now: float | None = None) -> None:
        """Feed one group's outcome to the apply histograms (a ``ReplicaState`` listener)."""
        self.apply_seconds.observe(outcome.seconds)
        if outcome.records:
            self.apply_group_records.observe(outcome.records)
        if outcome.heartbeat is not None:
            self.heartbeat_delay.observe(max((time.time() if now is None else now) - outcome.heartbeat.clock, 0.0))

    @property
    def method_labels(self) -> int:
        """Distinct method labels in use (at most ``max_method_labels``, plus ``other``)."""
        return len(self._methods)

    def export_bounds(self, bounds: list[Bound]) -> Bounds:
        """Put ``bounds`` on the registry, beside this registry's own (the method labels)."""
        collector = Bounds([Bound("RPC method labels", "entries", lambda: self.method_labels, self.max_method_labels), *bounds])
        self.registry.register(collector)
        return collector

    def export(self, readings: list[Reading]) -> Readings:
        """Put ``readings`` on the registry (each name once)."""
        collector = Readings(readings)
        self.registry.register(collector)
        return collector

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
