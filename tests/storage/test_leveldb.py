"""The plyvel backend passes py-evm's own database test suites and is atomic per batch."""

from pathlib import Path

import pytest
from eth.tools.db.atomic import AtomicDatabaseBatchAPITestSuite
from eth.tools.db.base import DatabaseAPITestSuite

from storage.leveldb import LevelDB
from storage.readonly import ReadOnlyDB, ReadOnlyError


@pytest.fixture
def db(tmp_path: Path) -> LevelDB:
    with LevelDB(tmp_path / "chaindb") as leveldb:
        yield leveldb


@pytest.fixture
def atomic_db(db: LevelDB) -> LevelDB:
    return db


class TestLevelDBIsAPyEvmDatabase(DatabaseAPITestSuite):
    pass


class TestLevelDBIsAPyEvmAtomicDatabase(AtomicDatabaseBatchAPITestSuite):
    pass


def test_atomic_batch_that_raises_writes_nothing(db: LevelDB) -> None:
    with pytest.raises(RuntimeError):
        with db.atomic_batch() as batch:
            batch[b"a"] = b"1"
            raise RuntimeError("abort")
    assert b"a" not in db


def test_atomic_batch_survives_reopen(tmp_path: Path) -> None:
    with LevelDB(tmp_path / "chaindb") as db:
        with db.atomic_batch() as batch:
            batch[b"a"] = b"1"
            batch[b"b"] = b"2"
    with LevelDB(tmp_path / "chaindb") as db:
        assert (db[b"a"], db[b"b"]) == (b"1", b"2")


def test_readonly_view_reads_through_and_refuses_writes(db: LevelDB) -> None:
    db[b"k"] = b"v"
    view = ReadOnlyDB(db)
    assert view[b"k"] == b"v"
    with pytest.raises(ReadOnlyError):
        view[b"k"] = b"w"
    with pytest.raises(ReadOnlyError):
        del view[b"k"]
    with pytest.raises(ReadOnlyError):
        with view.atomic_batch():
            pass
    assert db[b"k"] == b"v"


def test_leveldb_holds_at_most_its_block_cache_and_memtables_in_memory(tmp_path: Path) -> None:
    db = LevelDB(tmp_path / "db")
    for n in range(20_000):
        db[n.to_bytes(4, "big")] = bytes(1024)
    assert all(db[n.to_bytes(4, "big")] for n in range(0, 20_000, 7))
    assert 0 < db.memory_usage() <= LevelDB.MEMORY_BOUND
    db.close()
