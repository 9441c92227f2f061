"""Capture: every committed write is one journaled record, in the same LevelDB batch."""

from pathlib import Path

import pytest
from eth.tools.db.atomic import AtomicDatabaseBatchAPITestSuite
from eth.tools.db.base import DatabaseAPITestSuite

from master import journal
from master.capture import CaptureDB
from master.publisher import pack
from cluster.record import Authenticator, Kind, Record, decode, decode_record, encode_record
from storage.leveldb import LevelDB

AUTH = Authenticator.for_cluster("a-cluster-secret-0123", "main")


@pytest.fixture
def leveldb(tmp_path: Path) -> LevelDB:
    with LevelDB(tmp_path / "chaindb") as db:
        yield db


@pytest.fixture
def db(leveldb: LevelDB) -> CaptureDB:
    return CaptureDB(leveldb)


@pytest.fixture
def atomic_db(db: CaptureDB) -> CaptureDB:
    return db


class TestCaptureIsAPyEvmDatabase(DatabaseAPITestSuite):
    pass


class TestCaptureIsAPyEvmAtomicDatabase(AtomicDatabaseBatchAPITestSuite):
    pass


def journaled(leveldb: LevelDB) -> list[Record]:
    return [decode_record(encoded) for _, encoded in journal.pending(leveldb)]


def test_atomic_batch_becomes_exactly_one_record(leveldb: LevelDB, db: CaptureDB) -> None:
    with db.atomic_batch() as batch:
        batch[b"a"] = b"1"
        batch[b"b"] = b"2"
    assert journaled(leveldb) == [Record(1, ((b"a", b"1"), (b"b", b"2")))]


def test_failed_atomic_batch_publishes_nothing(leveldb: LevelDB, db: CaptureDB) -> None:
    with pytest.raises(RuntimeError):
        with db.atomic_batch() as batch:
            batch[b"a"] = b"1"
            raise RuntimeError
    assert journaled(leveldb) == [] and b"a" not in db


def test_bare_put_and_delete_are_one_record_each(leveldb: LevelDB, db: CaptureDB) -> None:
    db[b"a"] = b"1"
    del db[b"a"]
    assert journaled(leveldb) == [Record(1, ((b"a", b"1"),)), Record(2, ((b"a", None),))]


def test_sequence_continues_after_reopen(tmp_path: Path) -> None:
    with LevelDB(tmp_path / "chaindb") as leveldb:
        CaptureDB(leveldb)[b"a"] = b"1"
    with LevelDB(tmp_path / "chaindb") as leveldb:
        capture = CaptureDB(leveldb)
        capture[b"b"] = b"2"
        assert [r.sequence for r in journaled(leveldb)] == [1, 2]


def test_acknowledged_records_leave_the_journal(leveldb: LevelDB, db: CaptureDB) -> None:
    for i in range(3):
        db[b"k%d" % i] = b"v"
    journal.acknowledge(leveldb, [1, 2])
    assert [r.sequence for r in journaled(leveldb)] == [3]


def test_commit_listener_hears_each_sequence(leveldb: LevelDB) -> None:
    heard: list[int] = []
    capture = CaptureDB(leveldb, on_commit=heard.append)
    capture[b"a"] = b"1"
    with capture.atomic_batch() as batch:
        batch[b"b"] = b"2"
    assert heard == [1, 2]


def test_chain_writes_to_reserved_keys_are_refused(db: CaptureDB) -> None:
    with pytest.raises(ValueError):
        db[b"ethercattle:anything"] = b"x"


def test_pack_fills_messages_up_to_the_limit_in_order() -> None:
    entries = [(i, encode_record(Record(i, ((b"k", b"v" * 1000),)))) for i in range(1, 41)]
    messages = pack(entries, AUTH, "m", 8192)
    assert all(len(m.value) <= 8192 for m in messages)
    assert [s for m in messages for s in m.sequences] == list(range(1, 41))
    assert len(messages) == 6


def test_pack_splits_an_oversized_record_and_retires_it_with_its_last_part() -> None:
    entries = [(1, encode_record(Record(1, ((b"k", b"v"),)))), (2, encode_record(Record(2, ((b"big", b"x" * 20000),))))]
    messages = pack(entries, AUTH, "m", 8192)
    kinds = [decode(AUTH, m.value).kind for m in messages]
    assert kinds == [Kind.RECORDS, Kind.PART, Kind.PART, Kind.PART]
    assert [m.sequences for m in messages] == [(1,), (), (), (2,)]
