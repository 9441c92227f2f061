"""The backend's head: kept between the writes its writer announces, read each time otherwise."""

from __future__ import annotations

from eth.db.atomic import AtomicDB

from chain.dev import DevMiner, init_dev_chain
from chain.head import HEAD_KEY
from rpc.backend import ReplicaBackend


def dev_chain() -> AtomicDB:
    db = AtomicDB()
    init_dev_chain(db)
    return db


def test_with_announced_writes_the_head_moves_when_the_write_is_announced() -> None:
    db = dev_chain()
    backend = ReplicaBackend(db, writes_announced=True)
    genesis = backend.head_hash()
    mined = DevMiner(db).mine([])
    assert backend.head_hash() == genesis
    backend.invalidate()
    assert backend.head_hash() == mined.block.hash and mined.block.hash != genesis


def test_without_announced_writes_every_read_sees_the_stored_head() -> None:
    db = dev_chain()
    backend = ReplicaBackend(db)
    backend.head_hash()
    mined = DevMiner(db).mine([])
    assert backend.head_hash() == mined.block.hash


class WrittenDuringRead(AtomicDB):
    """A database whose head moves (and the move is announced) while a reader reads it."""

    def __init__(self, wrapped: AtomicDB, backend: list[ReplicaBackend], new_head: bytes) -> None:
        super().__init__()
        self._wrapped = wrapped
        self._backend = backend
        self._new_head = new_head

    def __getitem__(self, key: bytes) -> bytes:
        value = self._wrapped[key]
        if key == HEAD_KEY and self._backend:
            self._wrapped[HEAD_KEY] = self._new_head
            self._backend.pop().invalidate()
        return value


def test_a_head_read_that_races_a_write_is_not_kept() -> None:
    db = dev_chain()
    genesis = db[HEAD_KEY]
    announced: list[ReplicaBackend] = []
    backend = ReplicaBackend(WrittenDuringRead(db, announced, b"\x07" * 32), writes_announced=True)
    announced.append(backend)
    assert backend.head_hash() == genesis
    assert backend.head_hash() == b"\x07" * 32
