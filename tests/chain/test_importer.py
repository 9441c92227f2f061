"""Importing geth exports: completeness, idempotence, resumption and refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth.db.atomic import AtomicDB
from eth.vm.forks.homestead.blocks import HomesteadBlock
from eth.vm.forks.prague.blocks import PragueBlock

from chain.config import CONFIG_KEY, open_chain, read_config
from chain.dev import init_dev_chain
from chain.errors import ChainMismatch, InvalidBlock
from chain.importer import ImportProgress, import_chain, read_blocks_rlp, read_raw_blocks


def _contents(db: AtomicDB) -> dict[bytes, bytes]:
    return dict(db.wrapped_db.kv_store)  # type: ignore[attr-defined]


def test_rpc_compat_chain_imports_all_45_blocks(imported: Any, rpc_compat: Any) -> None:
    latest = rpc_compat.result("eth_getBlockByNumber", "get-latest")

    assert imported.result.imported == 45
    assert imported.result.head_number == int(rpc_compat.result("eth_blockNumber", "simple-test"), 16)
    assert "0x" + imported.result.head_hash.hex() == latest["hash"]


def test_reimport_on_the_same_database_is_a_noop(rpc_compat: Any) -> None:
    db = AtomicDB()
    import_chain(db, rpc_compat.genesis, rpc_compat.chain)
    before = _contents(db)

    again = import_chain(db, rpc_compat.genesis, rpc_compat.chain)

    assert (again.imported, again.skipped, again.head_number) == (0, 45, 45)
    assert _contents(db) == before


def test_interrupted_import_resumes_and_extends_the_schedule(rpc_compat: Any, tmp_path: Path) -> None:
    raw = read_raw_blocks(rpc_compat.chain)
    first_part = tmp_path / "first.rlp"
    first_part.write_bytes(b"".join(raw[:20]))
    db = AtomicDB()
    partial = import_chain(db, rpc_compat.genesis, first_part)

    full = import_chain(db, rpc_compat.genesis, rpc_compat.chain)

    assert partial.config.merge_block is None
    assert (full.imported, full.skipped) == (25, 20)
    assert full.config.merge_block == 36
    assert open_chain(db).get_canonical_head().hash == full.head_hash


def test_corrupted_block_fails_naming_its_number(rpc_compat: Any, tmp_path: Path) -> None:
    raw = read_raw_blocks(rpc_compat.chain)
    state_root = rlp.decode(raw[9])[0][3]
    assert rlp.decode(raw[9])[0][8] == (10).to_bytes(1, "big")
    corrupted = raw[9].replace(state_root, bytes([state_root[0] ^ 0xFF]) + state_root[1:])
    bad_chain = tmp_path / "bad.rlp"
    bad_chain.write_bytes(b"".join(raw[:9] + [corrupted] + raw[10:]))
    db = AtomicDB()

    with pytest.raises(InvalidBlock, match="invalid block 10 ") as caught:
        import_chain(db, rpc_compat.genesis, bad_chain)

    assert caught.value.number == 10
    assert "state_root" in caught.value.reason
    assert open_chain(db).get_canonical_head().block_number == 9


def test_block_signed_for_another_chain_id_is_refused(rpc_compat: Any, tmp_path: Path) -> None:
    document = rpc_compat.genesis_document()
    document["config"]["chainId"] = 1  # the genesis hash does not depend on it
    other_genesis = tmp_path / "genesis.json"
    other_genesis.write_text(json.dumps(document))

    with pytest.raises(InvalidBlock, match="chain id"):
        import_chain(AtomicDB(), other_genesis, rpc_compat.chain)


def test_import_refuses_a_database_holding_another_chain(rpc_compat: Any) -> None:
    db = AtomicDB()
    init_dev_chain(db)

    with pytest.raises(ChainMismatch):
        import_chain(db, rpc_compat.genesis, rpc_compat.chain)


def test_blocks_decode_with_their_forks_block_class(imported: Any, rpc_compat: Any) -> None:
    blocks = read_blocks_rlp(rpc_compat.chain, imported.result.config)

    assert [b.number for b in blocks] == list(range(1, 46))
    assert type(blocks[0]) is HomesteadBlock
    assert type(blocks[-1]) is PragueBlock


def test_progress_is_reported_for_every_block(imported: Any) -> None:
    seen: list[ImportProgress] = imported.progress

    assert [p.number for p in seen] == list(range(1, 46))
    assert seen[-1] == ImportProgress(number=45, imported=45, skipped=0, total=45)


def test_reimport_over_a_config_stored_without_fork_times_fills_them_in(rpc_compat: Any) -> None:
    # An older ethercattle stored no fork times, fork id blocks or deposit address.
    db = AtomicDB()
    import_chain(db, rpc_compat.genesis, rpc_compat.chain)
    document = json.loads(db[CONFIG_KEY])
    for key in ("forkTimes", "forkIdBlocks", "depositContract"):
        del document[key]
    db[CONFIG_KEY] = json.dumps(document).encode()

    result = import_chain(db, rpc_compat.genesis, rpc_compat.chain)

    assert result.skipped == 45
    assert dict(read_config(db).fork_times)["prague"] == result.config.fork_times[-1][1]
