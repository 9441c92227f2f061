"""A throwaway call's account database: what the EVM observes is what py-evm's ``AccountDB`` shows
(operation by operation, and call by call), nothing the call writes reaches the database or the
reads other calls share, and a call after a new block reads that block's state."""

from __future__ import annotations

import random
from typing import Any, Callable

import pytest
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.db.journal import get_next_checkpoint
from eth_account import Account as EthAccount
from eth_typing import Address, Hash32
from eth_utils import to_checksum_address

from chain.dev import DevMiner, dev_accounts, init_dev_chain
from rpc.backend import ReplicaBackend
from rpc.callargs import call_args, state_override, to_message
from rpc.callcache import SharedReads
from rpc.callstate import CallAccountDB
from rpc.evm import CallResult, execute, new_state, prepare, run
from rpc.limits import RpcLimits
from rpc.service import RpcService
from rpc.tracing.hooks import Tracer
from rpc.tracing.replay import trace_transactions
from storage.overlay import OverlayDB
from storage.readonly import ReadOnlyDB
from tests.rpc.conftest import caller

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
    (a create's, and py-evm can revert across only one wipe)."""
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


@pytest.mark.parametrize("seed", range(40))
def test_a_call_observes_what_py_evms_account_db_observes_through_writes_reverts_and_transactions(
        chain_state: tuple[AtomicDB, Hash32], seed: int) -> None:
    db, root = chain_state
    rng = random.Random(seed)
    ours, theirs = CallAccountDB(ReadOnlyDB(db), root, SharedReads()), AccountDB(AtomicDB(MemoryDB(dict(contents(db)))), root)
    checkpoints: list[tuple[Any, Any]] = []
    wiped: set[Address] = set()
    for step in range(200):
        roll = rng.random()
        if roll < 0.05 and not checkpoints:
            ours.lock_changes()
            theirs.lock_changes()
            wiped.clear()
            name = "lock_changes"
        elif roll < 0.15:
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


# --- a call on CallAccountDB against the same call on py-evm's AccountDB ------------------------------

FUNDED, _ = dev_accounts()[0]
AUTHORITY = EthAccount.from_key(b"\x07" * 32)
CODE = {
    "refund": "6001600055600060005500",  # SSTORE 1 then 0 in slot 0: a refund
    "create": "6460016000f3600052" "6005601b6000f0" "803b602052600052" "60406000f3",  # CREATE, EXTCODESIZE of it
    "pay new": "6000600060006000600561dead61fffff150" "61dead31600052" "60206000f3",  # CALL value 5 to a fresh account
    "reverted delegate": "600060006000600061beef61fffff450" "600054600052" "60206000f3",  # its SSTORE undone
    "self-destruct": "6000600060006000600061c0de61fffff150" "61dead31600052" "60206000f3",  # pays 0xdead, read after
    "delegated": "602a600055600054600052" "60206000f3",  # an EIP-7702 delegation's code: SSTORE 42, return it
}
HELPERS = {
    "0x" + "00" * 18 + "beef": {"code": "0x6007600055" "60006000fd"},  # SSTORE 7, REVERT
    "0x" + "00" * 18 + "c0de": {"code": "0x61deadff", "balance": "0x9"},  # SELFDESTRUCT to 0xdead
}


@pytest.fixture(scope="module")
def backend() -> ReplicaBackend:
    db = AtomicDB()
    init_dev_chain(db)
    return ReplicaBackend(db)


def both_ways(backend: ReplicaBackend, args: dict[str, Any], state: dict[str, Any]) -> tuple[CallResult, CallResult]:
    """The call as ``run`` executes it, and the same on py-evm's own account database."""
    env = prepare(backend, backend.head(), None, state_override(state))
    message = to_message(call_args(args), 50_000_000, env.base_fee, env.base_fee, backend.chain_id)
    py_evm_state = new_state(env, OverlayDB(env.db), base_fee=0 if message.gas_price == 0 else None)
    return run(env, message, deadline=float("inf")), execute(env, py_evm_state, message)[0]


@pytest.mark.parametrize("name", ["refund", "create", "pay new", "reverted delegate", "self-destruct"])
def test_a_call_answers_as_on_py_evms_account_db(backend: ReplicaBackend, name: str) -> None:
    target = "0x" + "00" * 18 + "a11c"
    ours, theirs = both_ways(backend, {"from": "0x" + FUNDED.hex(), "to": target, "gasPrice": "0x3b9aca00"},
                             {target: {"code": "0x" + CODE[name], "balance": "0x64"}, **HELPERS})
    assert ours == theirs and not ours.failed


def test_an_eip7702_delegation_answers_as_on_py_evms_account_db(backend: ReplicaBackend) -> None:
    code_address = "0x" + "00" * 18 + "de1e"
    authorization = AUTHORITY.sign_authorization({"chainId": backend.chain_id, "address": code_address, "nonce": 0})
    signed = {"chainId": hex(authorization.chain_id), "address": code_address, "nonce": "0x0",
              "yParity": hex(authorization.y_parity), "r": hex(authorization.r), "s": hex(authorization.s)}
    ours, theirs = both_ways(backend, {"from": "0x" + FUNDED.hex(), "to": AUTHORITY.address, "authorizationList": [signed]},
                             {code_address: {"code": "0x" + CODE["delegated"]}})
    assert ours == theirs and int.from_bytes(ours.output, "big") == 42


async def test_a_call_after_a_new_block_reads_that_blocks_state() -> None:
    db = AtomicDB()
    init_dev_chain(db)
    service = RpcService(db, limits=RpcLimits(response_cache_bytes=0), writes_announced=True)
    call = caller(service)
    _, key = dev_accounts()[0]
    payee, reader = "0x" + "00" * 18 + "beef", "0x" + "00" * 18 + "b0b0"
    read_balance = {reader: {"code": "0x61beef31600052" "60206000f3"}}  # returns BALANCE(0xbeef)
    assert int((await call("eth_call", {"to": reader}, "latest", read_balance))["result"], 16) == 0
    transfer = EthAccount.sign_transaction({"chainId": service.backend.chain_id, "nonce": 0, "gas": 21_000, "to": to_checksum_address(payee),
                                            "value": 7, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}, key)
    assert DevMiner(db).mine([transfer.raw_transaction]).included
    service.invalidate()  # what the apply agent does after each write
    assert int((await call("eth_call", {"to": reader}, "latest", read_balance))["result"], 16) == 7


class TopFrame(Tracer):
    """Keeps the transaction's own frame as it ended."""

    def exit(self, computation: Any) -> None:
        if computation.msg.depth == 0:
            self.frame = computation


def test_replaying_every_block_of_the_compat_chain_gives_each_receipts_status_and_logs(compat_db: AtomicDB) -> None:
    backend = ReplicaBackend(compat_db)
    replayed = 0
    for number in range(1, backend.head().block_number + 1):
        block = backend.block_by_number(number)
        assert block is not None
        for index, tracer in trace_transactions(backend, block, TopFrame, timeout=60, deadline=float("inf")):
            frame, receipt = tracer.frame, block.receipts[index]  # type: ignore[attr-defined]
            logs = tuple((log.address, tuple(log.topics), log.data) for log in receipt.logs)
            seen = tuple((address, tuple(topics), data) for address, topics, data in frame.get_log_entries())
            assert seen == logs, (number, index)
            if len(receipt.state_root) < 32:  # a status (Byzantium on), not a pre-Byzantium state root
                assert frame.is_error == (receipt.state_root != b"\x01"), (number, index)
            replayed += 1
    assert replayed >= 40
