"""The stored chain configuration and the chain class rebuilt from it."""

from __future__ import annotations

from typing import Any

import pytest
from eth.consensus.noproof import NoProofConsensus
from eth.consensus.pos import PosConsensus
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseAtomicDB
from eth_typing import BlockNumber

from chain.config import (
    CONFIG_KEY,
    ChainConfig,
    chain_class,
    open_chain,
    read_config,
    write_config,
)
from chain.errors import ChainConfigMissing, InvalidChainConfig, UnsupportedChain
from chain.osaka import BlobParameters, OsakaVM


def _address(hex_address: str) -> bytes:
    return bytes.fromhex(hex_address[2:])


def test_config_round_trips_through_json() -> None:
    config = ChainConfig(
        chain_id=5,
        forks=((0, "homestead"), (10, "london"), (20, "paris")),
        terminal_total_difficulty=12345678901234567890123,
        dao_fork_block=None,
    )

    assert ChainConfig.from_json(config.to_json()) == config


def test_config_is_stored_under_the_chain_config_key() -> None:
    db = AtomicDB()
    config = ChainConfig(chain_id=1, forks=((0, "prague"),))

    write_config(db, config)

    assert db[CONFIG_KEY] == config.to_json().encode()
    assert read_config(db) == config


def test_reading_config_from_an_empty_database_says_it_is_missing() -> None:
    with pytest.raises(ChainConfigMissing, match="chain-config"):
        read_config(AtomicDB())


def test_unknown_config_version_is_refused() -> None:
    with pytest.raises(InvalidChainConfig, match="version"):
        ChainConfig.from_json('{"version": 99, "chainId": 1, "forks": [[0, "prague"]]}')


def test_out_of_order_schedule_is_refused() -> None:
    with pytest.raises(InvalidChainConfig, match="out of order"):
        ChainConfig(chain_id=1, forks=((0, "london"), (5, "berlin")))


def test_chain_class_is_built_once_per_config() -> None:
    config = ChainConfig(chain_id=1, forks=((0, "london"), (5, "paris")))

    assert chain_class(config) is chain_class(ChainConfig.from_json(config.to_json()))


def test_pre_merge_vms_skip_seal_checks_and_post_merge_vms_keep_pos() -> None:
    vms = dict(chain_class(ChainConfig(chain_id=1, forks=((0, "london"), (5, "paris")))).vm_configuration)

    assert vms[BlockNumber(0)].consensus_class is NoProofConsensus
    assert vms[BlockNumber(5)].consensus_class is PosConsensus


def test_open_chain_rebuilds_the_imported_chain(imported: Any, rpc_compat: Any) -> None:
    chain = open_chain(imported.db)

    head = chain.get_canonical_head()
    assert head.hash == imported.result.head_hash
    block = chain.get_canonical_block_by_number(BlockNumber(45))
    recorded = rpc_compat.result("eth_getBlockReceipts", "get-block-receipts-latest")
    receipts = block.get_receipts(chain.chaindb)
    assert [r.gas_used for r in receipts] == [int(r["cumulativeGasUsed"], 16) for r in recorded]
    assert [len(r.logs) for r in receipts] == [len(r["logs"]) for r in recorded]
    assert ["0x" + t.hash.hex() for t in block.transactions] == [r["transactionHash"] for r in recorded]
    state = chain.get_vm(head).state
    balance = rpc_compat.result("eth_getBalance", "get-balance")
    assert state.get_balance(_address("0x7dcd17433742f4c0ca53122ab541d0ba67fc27df")) == int(balance, 16)
    delegation = rpc_compat.result("eth_getCode", "get-code-eip7702-delegation")
    assert "0x" + state.get_code(_address("0xeda8645ba6948855e3b3cd596bbb07596d59c603")).hex() == delegation


class _WritesForbidden(BaseAtomicDB):
    """A read-only view like a replica's: any write raises."""

    def __init__(self, wrapped: AtomicDB) -> None:
        self._wrapped = wrapped

    def __getitem__(self, key: bytes) -> bytes:
        return self._wrapped[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        raise AssertionError(f"write of {key!r}")

    def __delitem__(self, key: bytes) -> None:
        raise AssertionError(f"delete of {key!r}")

    def _exists(self, key: bytes) -> bool:
        return key in self._wrapped

    def atomic_batch(self) -> Any:
        raise AssertionError("atomic batch")


def test_reading_blocks_receipts_and_state_never_writes(imported: Any) -> None:
    chain = open_chain(_WritesForbidden(imported.db))

    head = chain.get_canonical_head()
    block = chain.get_canonical_block_by_number(head.block_number)
    receipt = chain.get_transaction_receipt(block.transactions[0].hash)
    state = chain.get_vm(head).state

    assert receipt == block.get_receipts(chain.chaindb)[0]
    assert state.get_nonce(block.transactions[0].sender) > 0


def test_blob_schedule_and_fork_times_survive_the_stored_json() -> None:
    config = ChainConfig(
        chain_id=1, forks=((0, "osaka"), (5, "bpo1")),
        blob_schedule=(("bpo1", BlobParameters(10, 15, 8346193)),),
        fork_times=(("osaka", 0), ("bpo1", 60)), fork_id_blocks=(1, 2),
        deposit_contract=bytes.fromhex("00000000219ab540356cbb839cbe05303d7705fa"),
    )

    assert ChainConfig.from_json(config.to_json()) == config


def test_a_bpo_fork_without_blob_parameters_is_refused() -> None:
    with pytest.raises(InvalidChainConfig, match="bpo1 has no blobSchedule entry"):
        ChainConfig(chain_id=1, forks=((0, "osaka"), (5, "bpo1")))


OSAKA_BLOBS = BlobParameters(8, 12, 5007716)

FOLLOWED = ChainConfig(
    chain_id=7,
    forks=((0, "london"), (10, "paris"), (12, "shanghai"), (14, "prague")),
    fork_times=(("shanghai", 120), ("cancun", 130), ("prague", 140), ("osaka", 200), ("amsterdam", 300)),
    blob_schedule=(("osaka", OSAKA_BLOBS),),
)
"""A chain whose known blocks reached Prague; Osaka and Amsterdam are configured, not reached."""


def test_a_block_past_the_known_ones_runs_the_time_fork_its_timestamp_reaches() -> None:
    assert FOLLOWED.fork_of(20, 199) == "prague"
    assert FOLLOWED.fork_of(20, 200) == "osaka"


def test_an_earlier_time_never_undoes_the_schedules_fork() -> None:
    assert FOLLOWED.fork_of(14, 0) == "prague"


def test_time_forks_apply_only_after_the_merge() -> None:
    assert FOLLOWED.fork_of(9, 250) == "london"


def test_reaching_a_fork_ethercattle_lacks_is_unsupported() -> None:
    with pytest.raises(UnsupportedChain, match="block 20 \\(time 300\\) activates amsterdam"):
        FOLLOWED.fork_of(20, 300)


def test_the_chain_class_runs_an_unscheduled_fork_with_the_configs_blob_parameters() -> None:
    chain = chain_class(FOLLOWED)
    vm = chain.get_vm_class_at(20, 200)
    assert issubclass(vm, OsakaVM) and vm.blob_parameters == OSAKA_BLOBS
    assert chain.get_vm_class_at(21, 212) is vm  # built once: classes cached per VM stay valid


def test_the_chain_class_keeps_its_own_vm_for_a_scheduled_fork() -> None:
    chain = chain_class(FOLLOWED)
    assert chain.get_vm_class_at(20, 199) is chain.get_vm_class_for_block_number(BlockNumber(20))
