"""Replica databases built by the real applier from a synthetic log, for snapshot tests without a broker."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster.record import Authenticator, Record, encode_record, encode_records
from cluster.settings import Settings
from replica.applier import Applier
from storage.keys import is_bookkeeping
from storage.leveldb import LevelDB

SECRET = "snapshot-test-secret-0123"
CLUSTER = "snaptest"


@dataclass
class FakeLog:
    """A CDC log in memory: messages as a real master would pack them."""

    cluster: str = CLUSTER
    messages: list[bytes] | None = None
    sequence: int = 0

    def __post_init__(self) -> None:
        self.messages = []
        self.auth = Authenticator.for_cluster(SECRET, self.cluster)

    def append(self, records: int, per_message: int = 10, value_size: int = 64) -> None:
        assert self.messages is not None
        batch: list[bytes] = []
        for _ in range(records):
            self.sequence += 1
            key = b"key-%08d" % self.sequence
            batch.append(encode_record(Record(self.sequence, ((key, os.urandom(value_size)), (b"last", key)))))
            if len(batch) == per_message:
                self.messages.append(encode_records(self.auth, "master", batch))
                batch = []
        if batch:
            self.messages.append(encode_records(self.auth, "master", batch))

    def apply_to(self, db: LevelDB, start: int = 0) -> Applier:
        assert self.messages is not None
        applier = Applier(db, self.auth)
        applier.apply([(offset, value) for offset, value in enumerate(self.messages) if offset >= start])
        return applier


def settings_for(datadir: Path, cluster: str = CLUSTER, **extra: object) -> Settings:
    return Settings(broker="kafka://127.0.0.1:1", cluster=cluster, secret=SECRET, datadir=datadir, **extra)


def all_pairs(chaindb: Path) -> dict[bytes, bytes]:
    with LevelDB(chaindb, create=False) as db:
        return dict(db.iterate())


def chain_pairs(chaindb: Path) -> dict[bytes, bytes]:
    return {key: value for key, value in all_pairs(chaindb).items() if not is_bookkeeping(key)}


@pytest.fixture
def fake_log() -> FakeLog:
    log = FakeLog()
    log.append(500)
    return log


@pytest.fixture
def replica_db(tmp_path: Path, fake_log: FakeLog) -> Path:
    """DATADIR of a stopped replica that applied 500 records in 50 messages."""
    datadir = tmp_path / "replica"
    with LevelDB(datadir / "chaindb") as db:
        fake_log.apply_to(db)
    return datadir
