"""A call's accounts and storage: plain dicts over the shared reads, an undo log for a journal.

py-evm's ``AccountDB`` is built to make state roots: every account change goes
through an RLP ``Account`` (a validated deep copy, re-encoded into a journal over a
trie cache), every touched address gets a storage database of four stacked layers,
and every snapshot checkpoints all of their journals. A call that is thrown away
(eth_call, eth_estimateGas, eth_createAccessList, debug_traceCall) never needs a
root: only what the EVM observes (balances, nonces, code, slots, whether accounts
exist, EIP-2929 warmth, and the revert of a failed frame). ``CallAccountDB`` keeps
exactly that. Profiled on a trivial getter, it takes py-evm's account bookkeeping
from about half of a call's CPU to a small share.

Reads come from the tries at the call's state root through ``SharedReads`` (keyed
by root, shared by every call and by the py-evm path); writes live only in this
object's dicts, so they reach neither the shared caches nor any database, and a
call needs no overlay of its own. Each write records the value it replaced in an
undo log; a checkpoint is a position in that log, so a snapshot costs nothing until
a frame fails and is rolled back.
"""

from __future__ import annotations

from typing import Any, Hashable

import rlp
from eth.abc import AccountDatabaseAPI, DatabaseAPI, MetaWitnessAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.db.journal import get_next_checkpoint
from eth.typing import JournalDBCheckpoint
from eth.validation import validate_uint64, validate_uint256
from eth.vm.interrupt import MissingBytecode
from eth_hash.auto import keccak
from eth_typing import Address, Hash32
from eth_utils import int_to_big_endian

from rpc.callcache import MAX_SHARED_CODE, SharedReads, cached_read
from rpc.statedb import MISSING, AccountState, decode_account

_ABSENT: Any = object()
"""In the undo log: the key was not in its table before the write."""


def shared_account(reads: SharedReads, db: DatabaseAPI, state_root: bytes, address: bytes) -> AccountState:
    """The account at ``address`` in the state ``state_root`` of ``db``, through the calls' shared reads."""
    key = (state_root, address)
    account = reads.account_states.get(key)
    if account is None:
        account = reads.account_states.put(key, decode_account(reads.nodes.value(db, state_root, keccak(address))))
    return account


class CallAccountDB(AccountDatabaseAPI):
    """py-evm's account database interface for one throwaway call at ``state_root`` of ``db``.

    It cannot make a state root or persist: a call that needs either (eth_simulateV1,
    state overrides, the state before a block's transaction) runs on py-evm's ``AccountDB``.
    It can replay a block's transactions one after another (``lock_changes`` between them).
    """

    def __init__(self, db: DatabaseAPI, state_root: Hash32, reads: SharedReads) -> None:
        self._db = db
        self._root = state_root
        self._reads = reads
        self._accounts: dict[Address, AccountState] = {}
        """Every account the call read, as it is now (writes journaled, first reads not)."""
        self._slots: dict[Address, dict[int, int]] = {}
        """Slots the call wrote, by account; a wiped account gets a fresh empty table."""
        self._locked: dict[Address, dict[int, int]] = {}
        """Slots as earlier transactions of a replayed block left them (``lock_changes``)."""
        self._wiped: dict[Address, bool] = {}
        """Accounts whose storage was wiped since the last ``lock_changes``."""
        self._code: dict[bytes, bytes] = {}
        """Code the call deployed, by hash (content-addressed: never undone); the rest is read
        through the shared code cache (a LevelDB read releases the GIL, and getting it back costs
        more than the read under load)."""
        self._warm: dict[Hashable, bool] = {}
        """EIP-2929's accessed addresses and (address, slot) pairs."""
        self._undo: list[tuple[dict[Any, Any], Any, Any]] = []
        self._checkpoints: dict[int, int] = {}

    # -- the journal -----------------------------------------------------------------

    def _write(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        self._undo.append((table, key, table.get(key, _ABSENT)))
        table[key] = value

    def record(self) -> JournalDBCheckpoint:
        """A checkpoint from py-evm's process-wide counter: Cancun's transient storage records the
        same one in a journal whose root checkpoint came from that counter, and refuses a repeat."""
        checkpoint = get_next_checkpoint()
        self._checkpoints[checkpoint] = len(self._undo)
        return checkpoint

    def discard(self, checkpoint: JournalDBCheckpoint) -> None:
        """Undo every write since ``checkpoint`` (a failed frame)."""
        position = self._checkpoints.pop(checkpoint)
        undo = self._undo
        while len(undo) > position:
            table, key, previous = undo.pop()
            if previous is _ABSENT:
                del table[key]
            else:
                table[key] = previous

    def commit(self, checkpoint: JournalDBCheckpoint) -> None:
        """Keep the writes since ``checkpoint``; an enclosing checkpoint can still undo them."""
        del self._checkpoints[checkpoint]

    def lock_changes(self) -> None:
        """Between a replayed block's transactions: what they wrote becomes what the next one
        finds (``from_journal=False``), nothing before it can be undone, and warmth starts over."""
        for address in self._wiped:
            self._locked[address] = {}
        for address, written in self._slots.items():
            self._locked.setdefault(address, {}).update(written)
        self._wiped = {}
        self._warm = {}
        self._undo = []
        self._checkpoints = {}

    # -- accounts --------------------------------------------------------------------

    def _account(self, address: Address) -> AccountState:
        account = self._accounts.get(address)
        if account is None:
            account = self._accounts[address] = shared_account(self._reads, self._db, self._root, address)
        return account

    def _set_account(self, address: Address, account: AccountState) -> None:
        self._account(address)  # the first read, so an undo restores it
        self._write(self._accounts, address, account)

    def _update(self, address: Address, nonce: int | None = None, balance: int | None = None,
                storage_root: bytes | None = None, code_hash: bytes | None = None) -> None:
        """The account with the given fields changed; it exists from now on (as py-evm's does once set)."""
        account = self._account(address)
        self._set_account(address, AccountState(
            True, account.nonce if nonce is None else nonce, account.balance if balance is None else balance,
            account.storage_root if storage_root is None else storage_root,
            account.code_hash if code_hash is None else code_hash))

    def get_balance(self, address: Address) -> int:
        return self._account(address).balance

    def set_balance(self, address: Address, balance: int) -> None:
        validate_uint256(balance, title="Account Balance")
        self._update(address, balance=balance)

    def get_nonce(self, address: Address) -> int:
        return self._account(address).nonce

    def set_nonce(self, address: Address, nonce: int) -> None:
        validate_uint64(nonce, title="Nonce")
        self._update(address, nonce=nonce)

    def increment_nonce(self, address: Address) -> None:
        self.set_nonce(address, self.get_nonce(address) + 1)

    def get_code_hash(self, address: Address) -> Hash32:
        return self._account(address).code_hash  # type: ignore[return-value]

    def get_code(self, address: Address) -> bytes:
        code_hash = self._account(address).code_hash
        if code_hash == EMPTY_SHA3:
            return b""
        code = self._code.get(code_hash) or self._reads.code.get(code_hash)
        if code is not None:
            return code
        try:
            code = self._db[code_hash]
        except KeyError:
            raise MissingBytecode(Hash32(code_hash)) from None
        if len(code) <= MAX_SHARED_CODE:
            self._reads.code.put(code_hash, code)
        return code

    def set_code(self, address: Address, code: bytes) -> None:
        code_hash = keccak(code)
        self._code[code_hash] = code
        self._update(address, code_hash=code_hash)

    def delete_code(self, address: Address) -> None:
        self._update(address, code_hash=EMPTY_SHA3)

    def account_has_code_or_nonce(self, address: Address) -> bool:
        account = self._account(address)
        return account.nonce != 0 or account.code_hash != EMPTY_SHA3

    def account_exists(self, address: Address) -> bool:
        return self._account(address).exists

    def touch_account(self, address: Address) -> None:
        self._update(address)

    def account_is_empty(self, address: Address) -> bool:
        account = self._account(address)
        return account.nonce == 0 and account.balance == 0 and account.code_hash == EMPTY_SHA3

    def delete_account(self, address: Address) -> None:
        self._wipe_storage(address)
        self._set_account(address, MISSING)

    # -- storage ---------------------------------------------------------------------

    def get_storage(self, address: Address, slot: int, from_journal: bool = True) -> int:
        """The slot now, or (``from_journal`` False) as the transaction found it.

        As py-evm's: a wipe hides the trie at once, but what earlier transactions wrote
        stays the "original" value until the next ``lock_changes``.
        """
        written = self._slots.get(address) if from_journal else self._locked.get(address)
        if written is not None and slot in written:
            return written[slot]
        return self._stored(address, slot)

    def _stored(self, address: Address, slot: int) -> int:
        storage_root = self._account(address).storage_root
        if storage_root == BLANK_ROOT_HASH:
            return 0
        encoded = cached_read(self._reads.slots, storage_root, int_to_big_endian(slot),
                              lambda key: self._reads.nodes.value(self._db, storage_root, keccak(key.rjust(32, b"\0"))))
        return int.from_bytes(rlp.decode(encoded), "big") if encoded else 0

    def set_storage(self, address: Address, slot: int, value: int) -> None:
        validate_uint256(value, title="Storage Value")
        written = self._slots.get(address)
        if written is None:
            written = self._slots[address] = {}
        self._write(written, slot, value)

    def delete_storage(self, address: Address) -> None:
        self._wipe_storage(address)
        self._update(address, storage_root=BLANK_ROOT_HASH)

    def _wipe_storage(self, address: Address) -> None:
        """Forget what the call wrote; the account's blank storage root hides what the trie holds."""
        self._write(self._slots, address, {})
        self._write(self._wiped, address, True)

    # -- EIP-2929 --------------------------------------------------------------------

    def is_address_warm(self, address: Address) -> bool:
        return address in self._warm

    def mark_address_warm(self, address: Address) -> None:
        if address not in self._warm:
            self._write(self._warm, address, True)

    def is_storage_warm(self, address: Address, slot: int) -> bool:
        return (address, slot) in self._warm

    def mark_storage_warm(self, address: Address, slot: int) -> None:
        key = (address, slot)
        if key not in self._warm:
            self._write(self._warm, key, True)

    # -- roots: not for a throwaway call -----------------------------------------------

    @property
    def state_root(self) -> Hash32:
        """The root the call started from: its writes never make a new one."""
        return self._root

    @state_root.setter
    def state_root(self, value: Hash32) -> None:
        if value != self._root:  # py-evm's revert restores the root it snapshotted: always this one
            raise NotImplementedError("a call's account database stays at its starting root")

    def has_root(self, state_root: bytes) -> bool:
        return state_root == self._root

    def make_state_root(self) -> Hash32:
        raise NotImplementedError("a throwaway call makes no state root (eth_simulateV1 uses py-evm's AccountDB)")

    def persist(self) -> MetaWitnessAPI:
        raise NotImplementedError("a throwaway call persists nothing (eth_simulateV1 uses py-evm's AccountDB)")
