"""A throwaway call's account database: what the EVM observes is what py-evm's ``AccountDB`` shows,
and nothing the call writes reaches the database or the reads other calls share."""

from __future__ import annotations

import random
from typing import Any, Callable

import pytest
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.db.journal import get_next_checkpoint
from eth_typing import Address, Hash32

from rpc.callcache import SharedReads
from rpc.callstate import CallAccountDB
from storage.readonly import ReadOnlyDB

ALICE = Address(b"\x01" * 20)
CONTRACT = Address(b"\x02" * 20)
NOBODY = Address(b"\x03" * 20)
ADDRESSES = (ALICE, CONTRACT, NOBODY)
SLOTS = (0, 1, 2, 7)


@pytest.fixture
def chain_state() -> tuple[AtomicDB, Hash32]:
    """A persisted state: ALICE with a balance and a nonce, CONTRACT with code and two slots."""
    db = AtomicDB()
    accounts = AccountDB(db)
    accounts.set_balance(ALICE, 10**18)
    accounts.set_nonce(ALICE, 5)
    accounts.set_code(CONTRACT, b"\x60\x00\x54\x00")
    accounts.set_storage(CONTRACT, 1, 11)
    accounts.set_storage(CONTRACT, 2, 22)
    accounts.persist()
    return db, accounts.state_root


def contents(db: AtomicDB) -> dict[bytes, bytes]:
    return db.wrapped_db.kv_store  # type: ignore[attr-defined, no-any-return]


def observe(accounts: Any) -> tuple[Any, ...]:
    """Everything an EVM can see of these accounts and slots."""
    seen: list[Any] = []
    for address in ADDRESSES:
        seen += [accounts.get_balance(address), accounts.get_nonce(address), accounts.get_code(address),
                 accounts.get_code_hash(address), accounts.account_exists(address), accounts.account_is_empty(address),
                 accounts.account_has_code_or_nonce(address), accounts.is_address_warm(address)]
        for slot in SLOTS:
            seen += [accounts.get_storage(address, slot), accounts.get_storage(address, slot, from_journal=False),
                     accounts.is_storage_warm(address, slot)]
    return tuple(seen)


def random_step(rng: random.Random, wiped: set[Address]) -> tuple[str, Callable[[Any], Any]]:
    """One write the EVM may make; an account's storage is wiped at most once in a transaction
    (a create's, and py-evm can revert across only one)."""
    address = rng.choice(ADDRESSES)
    slot = rng.choice(SLOTS)
    value = rng.choice((0, 1, rng.randrange(2**64)))
    steps: list[tuple[str, Callable[[Any], Any]]] = [
        ("set_balance", lambda db: db.set_balance(address, value)),
        ("set_nonce", lambda db: db.set_nonce(address, value)),
        ("increment_nonce", lambda db: db.increment_nonce(address) if db.get_nonce(address) < 2**63 else None),
        ("set_code", lambda db: db.set_code(address, bytes([value % 256]) * (value % 5))),
        ("delete_code", lambda db: db.delete_code(address)),
        ("touch_account", lambda db: db.touch_account(address)),
        ("set_storage", lambda db: db.set_storage(address, slot, value)),
        ("mark_address_warm", lambda db: db.mark_address_warm(address)),
        ("mark_storage_warm", lambda db: db.mark_storage_warm(address, slot)),
    ]
    if address not in wiped:
        steps += [("delete_account", lambda db: db.delete_account(address)),
                  ("delete_storage", lambda db: db.delete_storage(address))]
    name, step = rng.choice(steps)
    if name.startswith("delete_") and name != "delete_code":
        wiped.add(address)
    return name, step


@pytest.mark.parametrize("seed", range(12))
def test_a_call_observes_what_py_evms_account_db_observes_through_writes_and_reverts(
        chain_state: tuple[AtomicDB, Hash32], seed: int) -> None:
    db, root = chain_state
    rng = random.Random(seed)
    ours, theirs = CallAccountDB(ReadOnlyDB(db), root, SharedReads()), AccountDB(AtomicDB(MemoryDB(dict(contents(db)))), root)
    checkpoints: list[tuple[Any, Any]] = []
    wiped: set[Address] = set()
    for step in range(200):
        roll = rng.random()
        if roll < 0.15:
            checkpoints.append((ours.record(), theirs.record()))
            name = "record"
        elif roll < 0.3 and checkpoints:
            mine, py_evm = checkpoints.pop()
            name = rng.choice(("discard", "commit"))
            getattr(ours, name)(mine)
            getattr(theirs, name)(py_evm)
        else:
            name, apply = random_step(rng, wiped)
            apply(ours)
            apply(theirs)
        assert observe(ours) == observe(theirs), f"seed {seed}, step {step}: {name}"


def test_a_calls_writes_never_reach_the_database_or_the_shared_reads(chain_state: tuple[AtomicDB, Hash32]) -> None:
    db, root = chain_state
    stored = dict(contents(db))
    reads = SharedReads()
    before = observe(CallAccountDB(ReadOnlyDB(db), root, reads))
    call = CallAccountDB(ReadOnlyDB(db), root, reads)
    for address in ADDRESSES:
        call.set_balance(address, 1)
        call.set_code(address, b"\xfe")
        call.set_storage(address, 1, 99)
    call.delete_account(CONTRACT)
    assert dict(contents(db)) == stored
    assert observe(CallAccountDB(ReadOnlyDB(db), root, reads)) == before


def test_a_discarded_checkpoint_undoes_writes_made_under_committed_inner_ones(
        chain_state: tuple[AtomicDB, Hash32]) -> None:
    db, root = chain_state
    call = CallAccountDB(ReadOnlyDB(db), root, SharedReads())
    outer = call.record()
    inner = call.record()
    call.set_storage(CONTRACT, 1, 99)
    call.mark_address_warm(NOBODY)
    call.commit(inner)
    assert call.get_storage(CONTRACT, 1) == 99
    call.discard(outer)
    assert call.get_storage(CONTRACT, 1) == 11 and not call.is_address_warm(NOBODY)


def test_storage_as_the_transaction_found_it_reads_zero_once_the_account_is_wiped(
        chain_state: tuple[AtomicDB, Hash32]) -> None:
    db, root = chain_state
    call = CallAccountDB(ReadOnlyDB(db), root, SharedReads())
    call.set_storage(CONTRACT, 1, 5)
    assert call.get_storage(CONTRACT, 1, from_journal=False) == 11
    call.delete_storage(CONTRACT)
    assert (call.get_storage(CONTRACT, 1), call.get_storage(CONTRACT, 1, from_journal=False)) == (0, 0)


def test_a_call_makes_no_state_root(chain_state: tuple[AtomicDB, Hash32]) -> None:
    db, root = chain_state
    call = CallAccountDB(ReadOnlyDB(db), root, SharedReads())
    call.set_balance(ALICE, 1)
    assert call.state_root == root
    with pytest.raises(NotImplementedError):
        call.make_state_root()


def test_checkpoints_come_from_py_evms_counter_so_transient_storage_never_sees_one_twice(
        chain_state: tuple[AtomicDB, Hash32]) -> None:
    db, root = chain_state
    call = CallAccountDB(ReadOnlyDB(db), root, SharedReads())
    before = get_next_checkpoint()
    checkpoint = call.record()
    assert before < checkpoint < get_next_checkpoint()


def test_code_read_from_the_database_is_kept_for_later_calls_and_a_calls_own_is_not(
        chain_state: tuple[AtomicDB, Hash32]) -> None:
    db, root = chain_state
    reads = SharedReads()
    call = CallAccountDB(ReadOnlyDB(db), root, reads)
    stored = call.get_code(CONTRACT)
    call.set_code(ALICE, b"\x00")
    assert call.get_code(ALICE) == b"\x00"
    assert len(reads.code) == 1 and reads.code.get(call.get_code_hash(CONTRACT)) == stored
