"""A cluster's summary for the status page: from this replica's page data, or rebuilt from a peer's answer."""

from __future__ import annotations

from typing import Any

import pytest

from replica.clusters import MAX_REPLICAS, MAX_TEXT, PeerAnswerError, cluster_summary, peer_summary, unreachable

NOW = 1_800_000_000.0


def row(replica: str, ready: bool = True, stale: bool = False, head: int = 10, master_head: int = 10, lag: int = 0,
        **extra: Any) -> dict[str, Any]:
    return {"replica": replica, "ready": ready, "stale": stale, "head": head, "master_head": master_head, "lag": lag,
            "age": 0.5, "reason": None if ready else "lag 80 > 50", "halted": None, **extra}


def page(*rows: dict[str, Any], heartbeat_ok: bool = True, heartbeat_age: float | None = 0.4) -> dict[str, Any]:
    return {"cluster": "a", "replica": "r1", "now": NOW, "replicas": list(rows),
            "self": {"heartbeat_age": heartbeat_age, "checks": [{"name": "heartbeat_age", "ok": heartbeat_ok}]}}


def test_a_clusters_summary_counts_ready_replicas_and_takes_the_highest_head_and_lag() -> None:
    summary = cluster_summary(page(row("r1", head=12, master_head=14), row("r2", ready=False, head=9, lag=80)))
    assert summary["cluster"] == "a" and summary["reachable"] and summary["answered_by"] == "r1"
    assert (summary["ready"], summary["live"], summary["head"], summary["lag"]) == (1, 2, 12, 80)
    assert summary["master"] == {"head": 14, "heartbeat_age": 0.4, "alive": True}
    assert [r["replica"] for r in summary["replicas"]] == ["r1", "r2"]


def test_replicas_that_stopped_publishing_are_listed_but_count_for_nothing() -> None:
    summary = cluster_summary(page(row("r1", ready=False, head=5, master_head=5), row("gone", stale=True, head=99, master_head=99)))
    assert (summary["ready"], summary["live"], summary["head"], summary["master"]["head"]) == (0, 1, 5, 5)
    assert [r["replica"] for r in summary["replicas"]] == ["r1", "gone"]


def test_a_silent_master_is_shown_as_not_alive() -> None:
    summary = cluster_summary(page(row("r1", ready=False), heartbeat_ok=False, heartbeat_age=7.5))
    assert summary["master"]["alive"] is False and summary["master"]["heartbeat_age"] == 7.5


def test_a_peers_answer_round_trips_into_the_same_summary() -> None:
    ours = cluster_summary(page(row("r1"), row("r2", ready=False, lag=80)))
    assert peer_summary("a", ours) == ours


def test_a_peers_answer_keeps_only_known_fields_of_checked_types() -> None:
    answer = cluster_summary(page(row("r1")))
    answer["replicas"] = [{**row("r1"), "head": "0x10", "lag": -1, "age": float("inf"), "reason": "x" * 5000,
                           "web": "http://internal:6066", "<script>": 1}, "not a row"]
    answer["extra"] = {"deep": [1, 2]}
    summary = peer_summary("a", answer)
    assert "extra" not in summary
    (only,) = summary["replicas"]
    assert only["head"] is None and only["lag"] is None and only["age"] is None and len(only["reason"]) == MAX_TEXT
    assert set(only) == {"replica", "ready", "stale", "head", "master_head", "lag", "age", "reason", "halted"}


def test_a_peers_answer_keeps_at_most_a_bounded_number_of_replicas() -> None:
    answer = cluster_summary(page(*(row(f"r{i}") for i in range(MAX_REPLICAS + 50))))
    assert len(peer_summary("a", answer)["replicas"]) == MAX_REPLICAS


def test_an_answer_from_another_cluster_than_the_one_named_is_refused() -> None:
    with pytest.raises(PeerAnswerError, match="cluster 'a', not 'b'"):
        peer_summary("b", cluster_summary(page(row("r1"))))


@pytest.mark.parametrize("answer", [None, [], {"cluster": "a"}, {"cluster": "a", "replicas": "r1"}])
def test_an_answer_that_is_not_a_summary_is_refused(answer: Any) -> None:
    with pytest.raises(PeerAnswerError, match="not a cluster summary"):
        peer_summary("a", answer)


def test_an_unreachable_cluster_keeps_its_name_and_why() -> None:
    assert unreachable("b", "http://b:6066: cannot connect (Connection refused)") == {
        "cluster": "b", "reachable": False, "error": "http://b:6066: cannot connect (Connection refused)"}
