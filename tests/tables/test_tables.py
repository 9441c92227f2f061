"""The worker's Faust tables are built over the cluster's shared topics, without starting a worker."""

from __future__ import annotations

from pathlib import Path

import faust
from faust.stores.memory import Store as MemoryStore

from cluster.settings import Settings
from cluster.topics import TopicNames
from tables.emitted import EmittedTable, key_of
from tables.cluster_status import cluster_status_table


def settings_for(tmp_path: Path) -> Settings:
    return Settings(broker="kafka://127.0.0.1:1", cluster="main", datadir=tmp_path, secret="a-cluster-secret-0123",
                    replica_id="r1", emit_targets="http://127.0.0.1:1", emitter_name="e1")


def app_for(tmp_path: Path) -> faust.App:
    return faust.App("ethercattle-main-r1", broker="kafka://127.0.0.1:1", datadir=str(tmp_path / "faust"))


def test_the_status_table_reads_and_writes_the_clusters_shared_topic_not_a_per_app_changelog(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    table = cluster_status_table(app, settings_for(tmp_path))
    assert table.changelog_topic.get_topic_name() == TopicNames("main").replica_status
    assert table._changelog_topic_name() == TopicNames("main").replica_status
    assert app.tables["replica-status"] is table


def test_the_status_table_persists_no_offset_a_lost_changelog_would_contradict(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    app.conf.store = "rocksdb://"  # the worker's default store, which the status table must not fall back to
    table = cluster_status_table(app, settings_for(tmp_path))
    assert isinstance(table.data, MemoryStore)


def test_the_emitter_table_is_named_for_its_emitter_and_keyed_by_transaction_hash(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    emitted = EmittedTable(app, settings_for(tmp_path))
    assert emitted.table._changelog_topic_name() == TopicNames("main").emitted("e1")
    emitted.table.data[key_of(b"\x01" * 32)] = {"delivered": True}
    assert emitted.settled(b"\x01" * 32) and not emitted.settled(b"\x02" * 32)
    assert not emitted.recovered.is_set()
