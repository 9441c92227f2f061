"""The RPC reads through a read-only view, and eth_call writes only to an in-memory overlay."""

from __future__ import annotations

import pytest
from eth.db.atomic import AtomicDB
from eth.tools.db.atomic import AtomicDatabaseBatchAPITestSuite
from eth.tools.db.base import DatabaseAPITestSuite

from rpc.service import RpcService
from storage.overlay import OverlayDB
from storage.readonly import ReadOnlyDB, ReadOnlyError
from tests.rpc.conftest import caller


def contents(db: AtomicDB) -> dict[bytes, bytes]:
    """Everything an in-memory py-evm database holds."""
    return dict(db.wrapped_db.kv_store)  # type: ignore[attr-defined]


def test_rpc_backend_reads_through_a_read_only_view(compat_db: AtomicDB) -> None:
    service = RpcService(compat_db)
    assert isinstance(service.backend.db, ReadOnlyDB)
    with pytest.raises(ReadOnlyError):
        service.backend.db[b"key"] = b"value"
    with pytest.raises(ReadOnlyError):
        del service.backend.db[b"v1:canonical_head_hash"]
    with pytest.raises(ReadOnlyError):
        with service.backend.db.atomic_batch() as batch:
            batch[b"key"] = b"value"


async def test_eth_call_with_state_overrides_leaves_the_database_untouched(compat_db: AtomicDB) -> None:
    before = contents(compat_db)
    call = caller(RpcService(compat_db))
    override = {"0x" + "11" * 20: {"balance": "0x1", "code": "0x60016000556001600055", "stateDiff": {
        "0x" + "00" * 32: "0x" + "00" * 31 + "07"}}}
    response = await call("eth_call", {"to": "0x" + "11" * 20}, "latest", override)
    assert response["result"] == "0x"
    assert contents(compat_db) == before


# --- the overlay ---------------------------------------------------------------------


@pytest.fixture
def db() -> OverlayDB:
    return OverlayDB(AtomicDB())


@pytest.fixture
def atomic_db() -> OverlayDB:
    return OverlayDB(AtomicDB())


class TestOverlayIsAPyEvmDatabase(DatabaseAPITestSuite):
    pass


class TestOverlayIsAPyEvmAtomicDatabase(AtomicDatabaseBatchAPITestSuite):
    pass


def test_overlay_never_writes_below() -> None:
    base = AtomicDB()
    base[b"kept"] = b"old"
    overlay = OverlayDB(ReadOnlyDB(base))
    overlay[b"kept"] = b"new"
    overlay[b"added"] = b"x"
    with overlay.atomic_batch() as batch:
        batch[b"batched"] = b"y"
    assert overlay[b"kept"] == b"new" and overlay[b"batched"] == b"y"
    assert contents(base) == {b"kept": b"old"}


def test_overlay_delete_hides_the_value_below() -> None:
    base = AtomicDB()
    base[b"k"] = b"v"
    overlay = OverlayDB(ReadOnlyDB(base))
    del overlay[b"k"]
    assert b"k" not in overlay
    assert base[b"k"] == b"v"
