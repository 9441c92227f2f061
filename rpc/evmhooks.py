"""Hooks into py-evm's interpreter for calls: a deadline and an access-list tracer.

py-evm runs opcodes from a per-computation-class table, so a call gets its own
subclass whose table wraps a few opcodes: every jump and call checks the call's
deadline (every loop passes a jump, every recursion a call), and the opcodes that
touch accounts or slots feed geth's ``AccessListTracer`` logic. The state class
gets the same treatment: our computation class, an overridable blob base fee,
and no system-contract installation (that belongs to block building); a call that
is thrown away runs on a subclass of it whose accounts live in a ``CallAccountDB``.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from eth._utils.address import generate_contract_address
from eth.abc import ComputationAPI, DatabaseAPI, ExecutionContextAPI, MessageAPI, StateAPI, VirtualMachineAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.vm import opcode_values as op
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth.vm.message import Message
from eth.vm.stack import to_int
from eth_typing import Hash32

from rpc.callcache import SharedReads
from rpc.callstate import CallAccountDB

DEADLINE_OPCODES = frozenset({op.JUMP, op.JUMPI, op.CALL, op.CALLCODE, op.DELEGATECALL,
                              op.STATICCALL, op.CREATE, op.CREATE2})
"""Every loop passes a jump and every recursion a call: enough to enforce a deadline."""
SLOT_OPCODES = frozenset({op.SLOAD, op.SSTORE})
ADDRESS_OPCODES = frozenset({op.EXTCODECOPY, op.EXTCODEHASH, op.EXTCODESIZE, op.BALANCE,
                             op.SELFDESTRUCT})
CALL_OPCODES = frozenset({op.DELEGATECALL, op.CALL, op.STATICCALL, op.CALLCODE})


class CallTimeout(Exception):
    """The call ran past its deadline (not a VMError, so py-evm does not swallow it)."""


# --- access list tracing ------------------------------------------------------------


@dataclass
class AccessTracer:
    """geth's ``AccessListTracer``: addresses and slots a run touched."""

    excluded: frozenset[bytes]
    entries: dict[bytes, set[int]] = field(default_factory=dict)

    @classmethod
    def seeded(cls, access_list: Any, excluded: frozenset[bytes]) -> AccessTracer:
        tracer = cls(excluded)
        for address, slots in access_list or ():
            if address not in excluded:
                tracer.add_address(address)
            for slot in slots:
                tracer.add_slot(address, slot)
        return tracer

    def add_address(self, address: bytes) -> None:
        self.entries.setdefault(address, set())

    def add_slot(self, address: bytes, slot: int) -> None:
        self.entries.setdefault(address, set()).add(slot)

    def observe(self, opcode: int, computation: ComputationAPI) -> None:
        stack = computation._stack.values  # type: ignore[attr-defined]
        if opcode in SLOT_OPCODES and stack:
            self.add_slot(computation.msg.storage_address, to_int(stack[-1]))
        elif opcode in ADDRESS_OPCODES and stack:
            self._maybe_add(to_int(stack[-1]))
        elif opcode in CALL_OPCODES and len(stack) >= 5:
            self._maybe_add(to_int(stack[-2]))

    def _maybe_add(self, value: int) -> None:
        address = (value & (2**160 - 1)).to_bytes(20, "big")
        if address not in self.excluded:
            self.add_address(address)

    def access_list(self) -> tuple[tuple[bytes, tuple[int, ...]], ...]:
        """Sorted by address, slots sorted (as geth returns it)."""
        return tuple((address, tuple(sorted(self.entries[address]))) for address in sorted(self.entries))


# --- the instrumented EVM -----------------------------------------------------------------


PAUSE_CHECK_INTERVAL = 0.005
"""Seconds between two calls of a run's pause hook (it yields to the apply agent when behind)."""


class HookedOpcode:
    """Wraps one opcode: checks the run's deadline and feeds its tracer first."""

    def __init__(self, value: int, inner: Callable[..., Any]) -> None:
        self.value = value
        self.inner = inner
        self.mnemonic = getattr(inner, "mnemonic", "")
        self.gas_cost = getattr(inner, "gas_cost", 0)

    def __call__(self, computation: ComputationAPI) -> Any:
        state = computation.state
        now = time.monotonic()
        if now > state.call_deadline:  # type: ignore[attr-defined]
            raise CallTimeout()
        pause = state.call_pause  # type: ignore[attr-defined]
        if pause is not None and now >= state.call_next_pause:  # type: ignore[attr-defined]
            state.call_next_pause = now + PAUSE_CHECK_INTERVAL  # type: ignore[attr-defined]
            pause()
        tracer = state.call_tracer  # type: ignore[attr-defined]
        if tracer is not None:
            tracer.observe(self.value, computation)
        return self.inner(computation=computation)


HOOKED = DEADLINE_OPCODES | SLOT_OPCODES | ADDRESS_OPCODES | CALL_OPCODES


def instrument(computation_class: type[ComputationAPI], precompiles: dict[bytes, Any]) -> type[ComputationAPI]:
    """A computation class with hooked opcodes and the call's precompile set."""
    opcodes: dict[int, Any] = dict(computation_class.opcodes)
    for value in HOOKED & opcodes.keys():
        opcodes[value] = HookedOpcode(value, opcodes[value])
    return type(f"Call{computation_class.__name__}", (computation_class,),
                {"opcodes": opcodes, "_precompiles": precompiles})


def call_state_class(vm_class: type[VirtualMachineAPI], computation_class: type[ComputationAPI]) -> type[StateAPI]:
    """The fork's state class, running our computation class, with an overridable blob fee."""
    base = vm_class.get_state_class()

    def blob_fee(self: Any) -> int:
        if self.blob_fee_override is not None:
            return self.blob_fee_override
        return base.blob_base_fee.fget(self)  # type: ignore[attr-defined]

    def no_system_contracts(self: Any) -> None:
        """Block building installs system contracts; a call runs on the state as it is."""

    fork_precompiles = base.computation_class.get_precompiles()

    def is_address_warm(self: Any, address: Any) -> bool:
        """geth warms the fork's precompiles, not the call's overridden or moved set."""
        return self._account_db.is_address_warm(address) or address in fork_precompiles  # type: ignore[no-any-return]

    return type(f"Call{base.__name__}", (base,), {
        "computation_class": computation_class,
        "set_system_contracts": no_system_contracts,
        "is_address_warm": is_address_warm,
        "blob_base_fee": property(blob_fee),
        "blob_fee_override": None,
        "call_deadline": float("inf"),
        "call_tracer": None,
        "call_pause": None,
        "call_next_pause": 0.0,
    })


@functools.lru_cache(maxsize=64)
def fork_precompiles(vm_class: type[VirtualMachineAPI]) -> frozenset[tuple[bytes, Any]]:
    """The fork's precompiles as ``call_classes`` keys them, built and hashed once per fork (not per call)."""
    return frozenset(vm_class.get_state_class().computation_class.get_precompiles().items())


@functools.lru_cache(maxsize=64)
def call_classes(vm_class: type[VirtualMachineAPI], precompiles: frozenset[tuple[bytes, Any]]) -> type[StateAPI]:
    """The call state class of a fork with a precompile set, built once and reused.

    Classes are immutable once built (the hooks read the deadline and tracer off
    the state), and building two per call cost about 0.1 ms.
    """
    computation_class = vm_class.get_state_class().computation_class
    return call_state_class(vm_class, instrument(computation_class, dict(precompiles)))


@functools.lru_cache(maxsize=64)
def throwaway_class(state_class: type[StateAPI]) -> type[StateAPI]:
    """``state_class`` on a ``CallAccountDB``: for a call whose state is thrown away.

    Built with ``(db, execution_context, state_root, reads)``; py-evm's ``AccountDB`` is
    never built. Also a fork's own state class, for replaying a block's transactions.
    Its executor builds the message without py-evm's debug log (``call_message``).
    """

    def __init__(self: Any, db: DatabaseAPI, execution_context: ExecutionContextAPI, state_root: Hash32,
                 reads: SharedReads) -> None:
        self._db = db
        self.execution_context = execution_context
        self._account_db = CallAccountDB(db, state_root, reads)
        self.set_system_contracts()  # as py-evm's own constructor: a call state's does nothing

    executor = state_class.transaction_executor_class
    return type(f"Throwaway{state_class.__name__}", (state_class,), {
        "__init__": __init__,
        "transaction_executor_class": type(f"Call{executor.__name__}", (executor,),
                                           {"build_evm_message": call_message}),
    })


def call_message(executor: Any, transaction: Any) -> MessageAPI:
    """py-evm's ``build_evm_message``, one shape from Frontier to Prague, without its debug log.

    py-evm formats that log eagerly (a keccak of the data, the code in hex, the
    transaction's repr) on every message, logged or not: about a tenth of a trivial
    call. The fork's own hooks decide what differs: the blob fee (Cancun), the
    EIP-7702 authorizations' refund and delegated code (Prague).
    """
    state = executor.vm_state
    sender = transaction.sender
    fee = transaction.gas * state.get_gas_price(transaction)
    if hasattr(executor, "calc_data_fee") and transaction.type_id == BLOB_TX_TYPE:
        fee += executor.calc_data_fee(transaction)
    state.delta_balance(sender, -fee)
    state.increment_nonce(sender)
    refund = executor.calc_message_refund(transaction) if hasattr(executor, "calc_message_refund") else 0
    create_address: Any = None  # py-evm types it ``Address`` with a None default
    if transaction.to == CREATE_CONTRACT_ADDRESS:
        create_address = generate_contract_address(sender, state.get_nonce(sender) - 1)
        data, code, delegated = b"", transaction.data, False
    else:
        data = transaction.data
        if hasattr(executor, "get_code_at_address"):
            code, delegation = executor.get_code_at_address(transaction.to)
            delegated = delegation is not None
        else:
            code, delegated = state.get_code(transaction.to), False
    return Message(gas=transaction.gas - transaction.intrinsic_gas, to=transaction.to, sender=sender,
                   value=transaction.value, data=data, code=code, create_address=create_address,
                   refund=refund, is_delegation=delegated)
