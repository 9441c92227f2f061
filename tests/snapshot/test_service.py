"""The scheduled snapshot step and its retention warning, with a stand-in replica and log."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from replica.applier import Applier
from snapshot import service
from snapshot.service import Snapshotter, assess_retention
from snapshot.store import list_snapshots
from storage.leveldb import LevelDB
from tests.snapshot.conftest import CLUSTER, FakeLog, settings_for


def test_retention_is_fine_with_a_recent_snapshot_and_at_risk_near_the_earliest_offset() -> None:
    fine = assess_retention(snapshot_offset=900, earliest=0, log_end=1000, margin=0.25)
    assert (fine.headroom, fine.ratio, fine.at_risk) == (900, 0.9, False)
    close = assess_retention(snapshot_offset=1100, earliest=1000, log_end=2000, margin=0.25)
    assert close.at_risk and close.headroom == 100 and "10% of the retained log" in close.message
    gone = assess_retention(snapshot_offset=900, earliest=1000, log_end=2000, margin=0.25)
    assert gone.at_risk and gone.headroom == -100 and "has left Kafka's retention" in gone.message
    unknown_end = assess_retention(snapshot_offset=50, earliest=0, log_end=None, margin=0.25)
    assert not unknown_end.at_risk


@dataclass
class StandInReplica:
    """The parts of ``ReplicaState`` the snapshotter reads."""

    db: LevelDB
    applier: Applier
    log_end: int | None = None
    halted: object = None
    resumed: bool = True
    caught_up: bool = True


def test_scheduled_snapshots_follow_the_log_keep_the_newest_and_warn_near_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = FakeLog()
    log.append(300)
    assert log.messages is not None
    earliest = {"offset": 0}

    async def earliest_offset(settings, timeout=10.0):  # noqa: ANN001, ANN202
        return earliest["offset"]

    monkeypatch.setattr(service, "earliest_offset", earliest_offset)
    settings = settings_for(tmp_path, replica_id="r1", snapshot_interval=1, snapshot_keep=2, snapshot_format="dir")

    snapshotter = Snapshotter(settings)

    async def scenario() -> list[list[int]]:
        with LevelDB(tmp_path / "chaindb") as db:
            applier = Applier(db, log.auth)
            replica = StandInReplica(db, applier, log_end=len(log.messages))
            kept = []
            for upto in (10, 10, 20, 30):  # the second tick sees no new message: no snapshot
                applier.apply([(offset, log.messages[offset]) for offset in range(upto) if offset >= applier.position.next_offset])
                await snapshotter.tick(replica)
                kept.append([s.manifest.next_offset for s in list_snapshots(tmp_path / "snapshots", CLUSTER)])
            earliest["offset"] = 26
            with caplog.at_level(logging.WARNING, "ethercattle.snapshot"):
                await snapshotter.tick(replica)  # nothing new to snapshot; the newest (30) is 4 of 4 messages ahead
            assert not snapshotter.status.retention_at_risk
            replica.log_end = 100
            with caplog.at_level(logging.WARNING, "ethercattle.snapshot"):
                await snapshotter.tick(replica)
            return kept

    kept = asyncio.run(scenario())
    assert kept == [[10], [10], [10, 20], [20, 30]]
    assert snapshotter.status.snapshots_taken == 3 and snapshotter.status.last_offset == 30
    assert snapshotter.status.newest_offset == 30 and snapshotter.status.earliest_offset == 26
    assert snapshotter.status.retention_headroom == 4 and snapshotter.status.retention_at_risk is True
    assert any("only 4 messages ahead of Kafka's earliest offset 26" in r.message for r in caplog.records)


def test_no_scheduled_snapshot_from_a_halted_or_catching_up_replica(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = FakeLog()
    log.append(20)
    assert log.messages is not None

    async def earliest_offset(settings, timeout=10.0):  # noqa: ANN001, ANN202
        return 0

    monkeypatch.setattr(service, "earliest_offset", earliest_offset)
    settings = settings_for(tmp_path, replica_id="r1", snapshot_interval=1)

    async def scenario() -> None:
        with LevelDB(tmp_path / "chaindb") as db:
            applier = log.apply_to(db)
            snapshotter = Snapshotter(settings)
            assert await snapshotter.tick(StandInReplica(db, applier, halted="gap")) is None
            assert await snapshotter.tick(StandInReplica(db, applier, caught_up=False)) is None
            assert await snapshotter.tick(StandInReplica(db, applier)) is not None

    asyncio.run(scenario())


def test_resolve_out_puts_relative_paths_under_the_snapshot_dir_and_refuses_the_database(tmp_path: Path) -> None:
    snapshotter = Snapshotter(settings_for(tmp_path / "data", snapshot_dir=tmp_path / "snaps"))
    assert snapshotter.resolve_out("a.tar.gz") == tmp_path / "snaps" / "a.tar.gz"
    assert snapshotter.resolve_out(str(tmp_path / "elsewhere")) == tmp_path / "elsewhere"
    with pytest.raises(service.SnapshotError, match="inside the database"):
        snapshotter.resolve_out(str(tmp_path / "data" / "chaindb" / "x"))
