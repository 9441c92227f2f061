"""The dev chain: genesis, funded accounts and the miner."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from eth._utils.address import generate_contract_address
from eth.db.atomic import AtomicDB
from eth.vm.forks.cancun.constants import GAS_PER_BLOB
from eth_account import Account
from eth_typing import BlockNumber
from eth_utils import to_canonical_address

from chain.config import open_chain, read_config
from chain.dev import (
    DEV_BALANCE,
    DEV_CHAIN_ID,
    DEV_GAS_LIMIT,
    DEV_MNEMONIC,
    DevMiner,
    dev_accounts,
    init_dev_chain,
)
from chain.errors import ChainMismatch
from chain.transactions import kzg_to_versioned_hash

GWEI = 10**9
# Init code returning runtime code that returns 42 (0x600a600c600039600a6000f3 | 602a60005260206000f3).
RETURNS_42_INIT = bytes.fromhex("600a600c600039600a6000f3602a60005260206000f3")


@pytest.fixture
def db() -> AtomicDB:
    db = AtomicDB()
    init_dev_chain(db)
    return db


@pytest.fixture
def clock() -> Iterator[list[float]]:
    yield [1_700_000_000.0]


def _sign(index: int, chain_id: int = DEV_CHAIN_ID, **fields: Any) -> bytes:
    transaction = {
        "type": 2,
        "chainId": chain_id,
        "gas": 21_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": GWEI,
        "value": 0,
        **fields,
    }
    signed = Account.from_key(dev_accounts()[index][1]).sign_transaction(transaction)
    return bytes(signed.raw_transaction)


def test_dev_accounts_are_the_test_mnemonic_accounts() -> None:
    Account.enable_unaudited_hdwallet_features()
    for i, (address, key) in enumerate(dev_accounts()):
        derived = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        assert (derived.address.lower(), derived.key) == ("0x" + address.hex(), key)
    assert dev_accounts()[0][0] == to_canonical_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")


def test_init_dev_chain_funds_accounts_under_osaka(db: AtomicDB) -> None:
    chain = open_chain(db)
    genesis = chain.get_canonical_head()
    state = chain.get_vm(genesis).state

    assert read_config(db).chain_id == DEV_CHAIN_ID
    assert chain.get_vm_class_for_block_number(BlockNumber(1)).fork == "osaka"
    assert genesis.gas_limit == DEV_GAS_LIMIT
    assert all(state.get_balance(address) == DEV_BALANCE for address, _ in dev_accounts())


def test_init_dev_chain_on_an_existing_chain_changes_nothing(db: AtomicDB) -> None:
    before = dict(db.wrapped_db.kv_store)  # type: ignore[attr-defined]

    init_dev_chain(db)

    assert dict(db.wrapped_db.kv_store) == before  # type: ignore[attr-defined]


def test_dev_genesis_is_deterministic() -> None:
    def genesis_hash() -> bytes:
        return init_dev_chain(AtomicDB()).get_canonical_head().hash

    assert genesis_hash() == genesis_hash()


def test_init_dev_chain_refuses_a_database_with_another_chain_id(db: AtomicDB) -> None:
    with pytest.raises(ChainMismatch, match="1337"):
        init_dev_chain(db, 31337)


def test_mined_transfer_and_contract_creation_update_state(db: AtomicDB, clock: list[float]) -> None:
    sender, receiver = dev_accounts()[0][0], dev_accounts()[1][0]
    transfer = _sign(0, nonce=0, to=receiver, value=10**18)
    create = _sign(0, nonce=1, to=b"", data=RETURNS_42_INIT, gas=100_000)

    mined = DevMiner(db, clock=lambda: clock[0]).mine([transfer, create])

    assert [o.included for o in mined.outcomes] == [True, True]
    # py-evm keeps the EIP-658 status in the receipt's ``state_root`` field.
    assert [o.receipt.state_root for o in mined.outcomes if o.receipt] == [b"\x01", b"\x01"]
    chain = open_chain(db)
    head = chain.get_canonical_head()
    assert head.hash == mined.block.hash and head.block_number == 1
    state = chain.get_vm(head).state
    assert state.get_balance(receiver) == DEV_BALANCE + 10**18
    assert state.get_balance(sender) < DEV_BALANCE - 10**18
    assert state.get_nonce(sender) == 2
    contract = generate_contract_address(sender, 1)
    assert state.get_code(contract) == RETURNS_42_INIT[12:]
    stored = chain.get_transaction_receipt(mined.outcomes[1].tx_hash)  # type: ignore[arg-type]
    assert stored == mined.outcomes[1].receipt


def test_transaction_with_a_bad_nonce_is_skipped_with_the_reason(db: AtomicDB) -> None:
    good = _sign(0, nonce=0, to=dev_accounts()[1][0], value=1)
    bad_nonce = _sign(1, nonce=5, to=dev_accounts()[0][0], value=1)

    mined = DevMiner(db).mine([good, bad_nonce])

    assert [o.included for o in mined.outcomes] == [True, False]
    assert "nonce" in (mined.outcomes[1].error or "")
    assert [t.hash for t in mined.block.transactions] == [mined.outcomes[0].tx_hash]


def test_undecodable_and_foreign_chain_transactions_are_skipped(db: AtomicDB) -> None:
    foreign = _sign(0, chain_id=1, nonce=0, to=dev_accounts()[1][0], value=1)

    mined = DevMiner(db).mine([b"\x02not a transaction", foreign])

    assert mined.included == ()
    assert "decode" in (mined.outcomes[0].error or "")
    assert "chain id 1" in (mined.outcomes[1].error or "")


def test_mining_twice_increases_numbers_and_timestamps(db: AtomicDB, clock: list[float]) -> None:
    miner = DevMiner(db, clock=lambda: clock[0])

    first = miner.mine()
    second = miner.mine()  # same clock reading: the timestamp still moves forward

    assert (first.block.number, second.block.number) == (1, 2)
    assert first.block.header.timestamp == int(clock[0])
    assert second.block.header.timestamp == first.block.header.timestamp + 1


def test_blob_transaction_beyond_the_blocks_blob_gas_is_skipped(db: AtomicDB) -> None:
    # Canonical (sidecar-less) blob transactions, as they appear in blocks.
    versioned_hash = kzg_to_versioned_hash(b"\xc0" + bytes(47))  # the zero blob's commitment
    blob_fields = {"type": 3, "maxFeePerBlobGas": GWEI, "to": dev_accounts()[1][0]}
    six_blobs = _sign(0, nonce=0, blobVersionedHashes=[versioned_hash] * 6, **blob_fields)
    six_more = _sign(0, nonce=1, blobVersionedHashes=[versioned_hash] * 6, **blob_fields)
    three_more = _sign(0, nonce=1, blobVersionedHashes=[versioned_hash] * 3, **blob_fields)

    mined = DevMiner(db).mine([six_blobs, six_more, three_more])

    assert [o.included for o in mined.outcomes] == [True, False, True]
    assert "blob gas" in (mined.outcomes[1].error or "")
    assert mined.block.header.blob_gas_used == 9 * GAS_PER_BLOB


def test_mined_blocks_pass_full_import_on_a_fresh_chain(db: AtomicDB) -> None:
    mined = DevMiner(db).mine([_sign(0, nonce=0, to=dev_accounts()[1][0], value=1)])
    replica = init_dev_chain(AtomicDB())

    replica.import_block(mined.block)

    assert replica.get_canonical_head().hash == mined.block.hash


def test_dev_chain_runs_osaka_by_default() -> None:
    chain = init_dev_chain(AtomicDB())

    assert read_config(chain.chaindb.db).forks == ((0, "osaka"),)


@pytest.mark.parametrize("fork", ["paris", "shanghai", "cancun", "prague"])
def test_dev_chain_runs_an_older_fork_on_request(fork: str) -> None:
    db = AtomicDB()
    init_dev_chain(db, fork=fork)

    mined = DevMiner(db).mine([_sign(0, nonce=0, to=dev_accounts()[1][0])])

    assert read_config(db).forks == ((0, fork),)
    assert len(mined.included) == 1
