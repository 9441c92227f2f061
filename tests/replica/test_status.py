"""The status board: this replica's row, every replica's rows (stale ones marked), the page's data."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from cluster.settings import Settings
from replica.state import ReplicaState
from replica.status import FORGET_AFTER, STALE_INTERVALS, StatusBoard

NOW = 1_800_000_000.0


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[ReplicaState]:
    state = ReplicaState.open(Settings(broker="kafka://127.0.0.1:1", cluster="main", datadir=tmp_path,
                                       secret="a-cluster-secret-0123", replica_id="r1", status_interval=2.0))
    yield state
    state.db.close()


def test_own_row_says_where_this_replica_stands_and_why_it_is_not_ready(replica: ReplicaState) -> None:
    board = StatusBoard(replica, {}, lambda: "http://r1:6066")
    row = board.own_row(NOW)
    assert row["replica"] == "r1" and row["cluster"] == "main" and row["web"] == "http://r1:6066"
    assert row["head"] is None and row["offset"] == 0 and row["ready"] is False and "catch-up" in row["reason"]


def test_rows_of_replicas_that_stopped_publishing_are_marked_stale(replica: ReplicaState) -> None:
    table: dict[str, Any] = {
        "r2": {"replica": "r2", "time": NOW - 1},
        "r3": {"replica": "r3", "time": NOW - STALE_INTERVALS * 2.0 - 1},
        "junk": "not a row",
    }
    rows = StatusBoard(replica, table, lambda: "").rows(NOW)
    assert [(row["replica"], row["stale"]) for row in rows] == [("r2", False), ("r3", True)]


def test_the_page_shows_this_replica_before_its_first_row_is_published(replica: ReplicaState) -> None:
    table: dict[str, Any] = {}
    board = StatusBoard(replica, table, lambda: "")
    page = board.page(NOW)
    assert [row["replica"] for row in page["replicas"]] == ["r1"] and page["self"]["checks"]
    board.publish(board.own_row(NOW))
    assert set(table) == {"r1"}


def test_rows_of_replicas_silent_for_an_hour_are_forgotten_and_fresh_ones_kept(replica: ReplicaState) -> None:
    table: dict[str, Any] = {
        "r1": {"replica": "r1", "time": NOW - FORGET_AFTER - 60},
        "r2": {"replica": "r2", "time": NOW - 1},
        "r3": {"replica": "r3", "time": NOW - FORGET_AFTER - 1},
        "junk": "not a row",
    }
    departed = StatusBoard(replica, table, lambda: "").forget_departed(NOW)
    assert sorted(departed) == ["junk", "r3"]
    assert set(table) == {"r1", "r2"}
