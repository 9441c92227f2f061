"""Readiness checks, eth_syncing progress, metrics and the chart history, on a replica state without Faust."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster.record import Authenticator, Heartbeat, Record, encode_heartbeat, encode_record, encode_records
from cluster.settings import Settings
from replica.metrics import ReplicaMetrics
from filters.store import FilterStore
from replica.history import History, Sample
from pending.pool import PendingPool
from replica.applier import ApplyHalted
from chain.head import SyncProgress
from replica.readiness import ReadinessHook, checks, not_ready_reason, report, sync_progress
from replica.state import ReplicaState

SECRET = "a-cluster-secret-0123"
AUTH = Authenticator.for_cluster(SECRET, "main")
NOW = 1_800_000_000.0


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[ReplicaState]:
    settings = Settings(broker="kafka://127.0.0.1:1", cluster="main", datadir=tmp_path, secret=SECRET, replica_id="r1",
                        max_lag=5, max_heartbeat_age=3, max_broker_silence=2)
    state = ReplicaState.open(settings)
    yield state
    state.db.close()


def beat(sequence: int = 0, clock: float = NOW, head: int = 0) -> Heartbeat:
    return Heartbeat(sequence, clock, head, 0, b"\0" * 32)


def ready(state: ReplicaState, now: float = NOW) -> ReplicaState:
    """A replica that reached the log's end, heard the master and the broker just now."""
    state.observe_log_end(state.applier.position.next_offset, fetched_at=now)
    state.heartbeat = beat(state.applier.position.sequence, now)
    return state


def failing(state: ReplicaState, now: float = NOW) -> dict[str, str]:
    return {check.name: check.detail for check in checks(state, now) if not check.ok}


def test_a_fresh_replica_is_not_ready_and_says_why(replica: ReplicaState) -> None:
    assert failing(replica).keys() == {"caught_up", "broker", "lag", "heartbeat_age"}
    reason = not_ready_reason(replica, NOW)
    assert reason is not None and "initial catch-up" in reason and "no master heartbeat" in reason


def test_a_replica_that_authenticates_nothing_says_to_check_its_secret(replica: ReplicaState) -> None:
    forger = Authenticator.for_cluster("not-the-cluster-secret", "main")
    replica.applied(replica.applier.apply([(0, encode_heartbeat(forger, "m", beat()))]))
    assert "1 message(s) of this cluster failed authentication" in failing(replica)["heartbeat_age"]
    assert "check ETHERCATTLE_SECRET" in failing(replica)["heartbeat_age"]


def test_skipped_strays_are_counted_by_reason_on_metrics(replica: ReplicaState) -> None:
    replica.applied(replica.applier.apply([(0, b"\x00" * 80), (1, b"\x01" * 90)]))
    text = ReplicaMetrics(replica).exposition().decode()
    assert 'ethercattle_stray_messages_total{reason="not-an-envelope"} 2.0' in text


def test_caught_up_with_a_recent_heartbeat_and_broker_is_ready(replica: ReplicaState) -> None:
    ready(replica)
    assert not_ready_reason(replica, NOW + 1) is None
    body = report(replica, NOW + 1)
    assert body["ready"] and body["reason"] is None and body["syncing"] is None


def test_a_shared_view_still_loading_its_topic_keeps_the_replica_unready_naming_it(replica: ReplicaState) -> None:
    ready(replica)
    pool, store = PendingPool(ttl=60), FilterStore()
    replica.shared_views.update({"pending view": pool, "filter store": store})
    store.loaded = True
    assert failing(replica, NOW + 1) == {"shared_views": "still loading: pending view"}
    pool.loaded = True
    assert not_ready_reason(replica, NOW + 1) is None


def test_the_rpc_reuses_a_readiness_verdict_for_a_tenth_of_a_second_only(replica: ReplicaState) -> None:
    clock = [0.0]
    hook = ReadinessHook(replica, max_age=0.1, clock=lambda: clock[0])
    ready(replica, now=time.time())
    assert hook() is None
    replica.halted = ApplyHalted("forged", 7, "a forged record at offset 7")
    clock[0] = 0.05
    assert hook() is None  # the verdict of 50 ms ago
    clock[0] = 0.1
    reason = hook()
    assert reason is not None and "forged" in reason


def test_a_silent_broker_makes_the_replica_unready_saying_so(replica: ReplicaState) -> None:
    ready(replica)
    replica.heartbeat = beat(clock=NOW + 9)  # even with a fresh heartbeat
    assert failing(replica, NOW + 10).keys() == {"broker"}
    assert "unreachable" in failing(replica, NOW + 10)["broker"]


def test_an_old_heartbeat_makes_the_replica_unready(replica: ReplicaState) -> None:
    ready(replica)
    replica.observe_log_end(0, fetched_at=NOW + 4)
    assert failing(replica, NOW + 4).keys() == {"heartbeat_age"}
    assert "master" in failing(replica, NOW + 4)["heartbeat_age"]


def test_lag_beyond_the_limit_makes_the_replica_unready_but_keeps_it_caught_up(replica: ReplicaState) -> None:
    ready(replica)
    replica.observe_log_end(6, fetched_at=NOW)
    assert failing(replica).keys() == {"lag"} and replica.caught_up


def test_a_log_that_ends_before_the_applied_offset_is_a_log_reset(replica: ReplicaState) -> None:
    message = encode_records(AUTH, "m", [encode_record(Record(1, ((b"k", b"v"),)))])
    replica.applied(replica.applier.apply([(0, message), (1, encode_heartbeat(AUTH, "m", beat(1)))]))
    assert replica.applier.position.next_offset == 2
    halted = replica.observe_log_end(1, fetched_at=NOW)
    assert halted is not None and halted.reason == "log-reset" and replica.halted is halted
    assert "lost or reset" in failing(replica)["not_halted"]
    assert replica.observe_log_end(0, fetched_at=NOW) is None  # reported once


def test_block_age_is_checked_only_when_configured(replica: ReplicaState, tmp_path: Path) -> None:
    ready(replica)
    assert "block_age" not in {check.name for check in checks(replica, NOW)}
    strict = ReplicaState(replica.settings.model_copy(update={"max_block_age": 60.0}), replica.db, replica.applier)
    ready(strict)
    assert "no head block" in failing(strict)["block_age"]


def test_sync_progress_runs_from_the_head_at_start_to_the_masters_head(replica: ReplicaState) -> None:
    replica.observe_log_end(100, fetched_at=NOW)
    replica.tail_heartbeat = beat(sequence=500, head=42)
    progress = sync_progress(replica)
    assert progress == SyncProgress(0, 0, 42)
    replica.heartbeat = beat(sequence=10, head=3)  # an older heartbeat, applied on the way
    assert sync_progress(replica) == SyncProgress(0, 0, 42)
    ready(replica)
    assert sync_progress(replica) is None
    assert replica.sync_started_at_block is None


def test_metrics_parse_and_follow_the_replica_state(replica: ReplicaState) -> None:
    metrics = ReplicaMetrics(replica)
    ready(replica)
    message = encode_records(AUTH, "m", [encode_record(Record(1, ((b"k", b"v" * 100),)))])
    replica.applied(replica.applier.apply([(0, message)]))
    replica.observe_log_end(1, fetched_at=time.time())
    replica.heartbeat = beat(1, time.time())
    metrics.record_rpc("eth_blockNumber", "ok", 0.002)
    metrics.record_rpc("eth_call", -32000, 0.2)

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
    }
    assert samples[("ethercattle_ready", ())] == 1
    assert samples[("ethercattle_applied_records_total", ())] >= 1
    assert samples[("ethercattle_applied_bytes_total", ())] > 100
    assert samples[("ethercattle_lag_messages", ())] == 0
    assert samples[("ethercattle_readiness_check", (("check", "broker"),))] == 1
    assert samples[("ethercattle_rpc_requests_total", (("method", "eth_call"), ("status", "-32000")))] >= 1
    assert samples[("ethercattle_rpc_request_seconds_count", (("method", "eth_blockNumber"), ("status", "ok")))] >= 1
    assert samples[("ethercattle_apply_seconds_count", ())] >= 1


def test_exported_readings_are_read_at_scrape_time(replica: ReplicaState) -> None:
    metrics = ReplicaMetrics(replica)
    clients = [3]
    metrics.export([("ethercattle_test_clients", "gauge", "clients now", lambda: clients[0]),
                    ("ethercattle_test_dropped", "counter", "dropped so far", lambda: 7)])
    clients[0] = 5
    text = metrics.exposition().decode()
    assert "ethercattle_test_clients 5.0" in text and "ethercattle_test_dropped_total 7.0" in text


def test_rpc_method_labels_are_bounded(replica: ReplicaState) -> None:
    metrics = ReplicaMetrics(replica, max_method_labels=2)
    assert [metrics.method_label(name) for name in ("a", "b", "c", "a", "x" * 100)] == ["a", "b", "other", "a", "other"]


def test_history_keeps_one_window_of_newer_samples_per_replica() -> None:
    history = History(interval=1.0, window=10.0)
    assert history.add("r1", Sample(NOW, 1, 0, True))
    assert not history.add("r1", Sample(NOW, 1, 0, True))  # the unchanged row of a stopped replica
    for second in range(1, 30):
        history.add("r1", Sample(NOW + second, 1 + second, 0, True))
    assert len(history.series("r1")) <= history.maxlen
    history.add("r2", Sample(NOW, 5, 3, False))
    history.prune(NOW + 29)
    assert history.replicas() == ["r1"]  # r2's only sample left the window
    assert all(sample.time >= NOW + 19 for sample in history.series("r1"))
    assert history.as_json()["r1"][-1] == [NOW + 29, 30, 0, True]
