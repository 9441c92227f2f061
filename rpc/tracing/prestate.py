"""geth's ``prestateTracer``: the accounts and slots a transaction touched, as they were.

Accounts are looked up the first time the transaction reaches them (sender,
recipient and coinbase at its start, then through the opcodes that name an
account, a slot or a new contract), before anything changes them. ``diffMode``
answers ``{pre, post}`` with only what the transaction changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth._utils.address import generate_contract_address, generate_safe_contract_address
from eth.abc import ComputationAPI, StateAPI
from eth.constants import EMPTY_SHA3
from eth.vm import opcode_values as op
from eth.vm.stack import to_int
from eth_typing import Address

from rpc.format import JSON, data, quantity, word
from rpc.tracing.hooks import Tracer, TxOutcome

SLOT_OPCODES = frozenset({op.SLOAD, op.SSTORE})
ACCOUNT_OPCODES = frozenset({op.EXTCODECOPY, op.EXTCODEHASH, op.EXTCODESIZE, op.BALANCE, op.SELFDESTRUCT})
CALL_OPCODES = frozenset({op.DELEGATECALL, op.CALL, op.STATICCALL, op.CALLCODE})


def _address(value: Any) -> bytes:
    return (to_int(value) & (2**160 - 1)).to_bytes(20, "big")


@dataclass
class Account:
    """geth's prestate ``account``: None fields are left out."""

    balance: int | None = None
    nonce: int = 0
    code: bytes = b""
    code_hash: bytes | None = None
    storage: dict[int, int] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.nonce > 0 or bool(self.code) or bool(self.balance)

    def to_json(self) -> JSON:
        account: JSON = {}
        if self.balance is not None:
            account["balance"] = quantity(self.balance)
        if self.code:
            account["code"] = data(self.code)
        if self.code_hash is not None:
            account["codeHash"] = data(self.code_hash)
        if self.nonce:
            account["nonce"] = self.nonce
        if self.storage:
            account["storage"] = {word(slot): word(value) for slot, value in self.storage.items()}
        return account


@dataclass(frozen=True)
class PrestateTracerConfig:
    diff_mode: bool = False
    disable_code: bool = False
    disable_storage: bool = False


def _code_hash(state: StateAPI, address: bytes) -> bytes | None:
    """The code hash geth keeps: none for an account without code."""
    code_hash = state.get_code_hash(Address(address))
    return None if code_hash in (EMPTY_SHA3, bytes(32)) else code_hash


class PrestateTracer(Tracer):
    """Records pre-transaction accounts (and, in diff mode, what changed)."""

    opcodes = SLOT_OPCODES | ACCOUNT_OPCODES | CALL_OPCODES | {op.CREATE, op.CREATE2}

    def __init__(self, config: PrestateTracerConfig = PrestateTracerConfig()) -> None:
        super().__init__()
        self.config = config
        self.pre: dict[bytes, Account] = {}
        self.post: dict[bytes, Account] = {}
        self.created: set[bytes] = set()
        self.deleted: set[bytes] = set()
        self.empty: set[bytes] = set()
        self.state: StateAPI | None = None

    def lookup(self, state: StateAPI, address: bytes) -> None:
        if address in self.pre:
            return
        account = Account(state.get_balance(Address(address)), state.get_nonce(Address(address)),
                          state.get_code(Address(address)), _code_hash(state, address))
        if not account.exists:
            self.empty.add(address)
        if self.config.disable_code:
            account.code = b""
        self.pre[address] = account

    def lookup_slot(self, state: StateAPI, address: bytes, slot: int) -> None:
        self.lookup(state, address)
        storage = self.pre[address].storage
        if not self.config.disable_storage and slot not in storage:
            storage[slot] = state.get_storage(Address(address), slot)

    def start(self, state: StateAPI, transaction: Any) -> None:
        self.state = state
        sender = transaction.sender
        self.lookup(state, sender)
        if transaction.to:
            self.lookup(state, transaction.to)
        else:
            created = generate_contract_address(Address(sender), state.get_nonce(Address(sender)))
            self.lookup(state, created)
            self.created.add(created)
        self.lookup(state, state.coinbase)

    def step(self, opcode: int, computation: ComputationAPI) -> None:
        stack = computation._stack.values  # type: ignore[attr-defined]
        state = computation.state
        caller = computation.msg.storage_address
        if opcode in SLOT_OPCODES and stack:
            self.lookup_slot(state, caller, to_int(stack[-1]))
        elif opcode in ACCOUNT_OPCODES and stack:
            self.lookup(state, _address(stack[-1]))
            if opcode == op.SELFDESTRUCT:
                self.deleted.add(caller)
        elif opcode in CALL_OPCODES and len(stack) >= 5:
            self.lookup(state, _address(stack[-2]))
        elif opcode == op.CREATE:
            self._created(state, generate_contract_address(Address(caller), state.get_nonce(Address(caller))))
        elif opcode == op.CREATE2 and len(stack) >= 4:
            start, size, salt = to_int(stack[-2]), to_int(stack[-3]), to_int(stack[-4])
            init = bytes(computation._memory._bytes[start:start + size]).ljust(size, b"\0")  # type: ignore[attr-defined]
            self._created(state, generate_safe_contract_address(Address(caller), salt, init))

    def _created(self, state: StateAPI, address: bytes) -> None:
        self.lookup(state, address)
        self.created.add(address)

    def finish(self, outcome: TxOutcome) -> None:
        if self.config.diff_mode and self.state is not None:
            self._diff(self.state)
        for address in self.created & self.empty:
            self.pre.pop(address, None)

    def _diff(self, state: StateAPI) -> None:
        """geth's ``processDiffState``: keep in ``pre`` only what changed, and put the new values in ``post``."""
        for address, before in list(self.pre.items()):
            if address in self.deleted:
                continue
            after = self._changes(state, address, before)
            if after is None:
                del self.pre[address]
            else:
                self.post[address] = after

    def _changes(self, state: StateAPI, address: bytes, before: Account) -> Account | None:
        after, modified = Account(), False
        balance, nonce = state.get_balance(Address(address)), state.get_nonce(Address(address))
        if balance != before.balance:
            after.balance, modified = balance, True
        if nonce != before.nonce:
            after.nonce, modified = nonce, True
        code_hash = _code_hash(state, address)
        if code_hash != before.code_hash:
            after.code_hash, modified = code_hash or bytes(32), True
        if not self.config.disable_code:
            code = state.get_code(Address(address))
            if code != before.code:
                after.code, modified = code, True
        for slot, value in list(before.storage.items()):
            new = state.get_storage(Address(address), slot)
            if value == new or value == 0:
                del before.storage[slot]
            if value != new:
                modified = True
                if new:
                    after.storage[slot] = new
        return after if modified else None

    def result(self) -> JSON:
        if self.config.diff_mode:
            return {"post": {data(a): account.to_json() for a, account in self.post.items()},
                    "pre": {data(a): account.to_json() for a, account in self.pre.items()}}
        return {data(address): account.to_json() for address, account in self.pre.items()}


__all__ = ["PrestateTracer", "PrestateTracerConfig"]
