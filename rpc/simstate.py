"""The state class eth_simulateV1 runs on: geth's fee rule without validation, ERC-7528 transfer logs.

Built on the call state class (``rpc.evmhooks``: deadline, tracer, precompile set), it adds:

- geth's ``NoBaseFee`` tip: without validation a message with zero fee caps pays
  no tip (py-evm would take ``fee cap - base fee`` from the coinbase, a negative amount);
- ``traceTransfers``: every frame that moves ether (a call or create with value, a
  self-destruct with a balance; never a DELEGATECALL) logs geth's synthetic ERC-7528
  ``Transfer`` from the ERC-7528 address before it runs, so py-evm's own log rules
  keep or drop it with the frame. Those log counters are remembered: the call result
  shows them, the receipt (and so the block's roots and bloom) does not;
- geth's log numbering: every log emitted in the block takes the next index, even
  one a failing frame drops later.
"""

from __future__ import annotations

import functools
from typing import Any

from eth.abc import ComputationAPI, MessageAPI, SignedTransactionAPI, StateAPI, TransactionContextAPI
from eth.vm import opcode_values as op
from eth.vm.stack import to_int

TRANSFER_ADDRESS = bytes.fromhex("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")
"""ERC-7528's pseudo-address for ether."""
TRANSFER_TOPIC = int("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef", 16)
"""keccak256("Transfer(address,address,uint256)")."""


def _log_transfer(computation: ComputationAPI, sender: bytes, recipient: bytes, value: int) -> None:
    state = computation.state
    if not getattr(state, "trace_transfers", False) or value <= 0:
        return
    topics = (TRANSFER_TOPIC, int.from_bytes(sender, "big"), int.from_bytes(recipient, "big"))
    computation.add_log_entry(TRANSFER_ADDRESS, topics, value.to_bytes(32, "big"))  # type: ignore[arg-type]
    counter = computation._log_entries[-1][0]  # type: ignore[attr-defined]
    state.transfer_log_counters.add(counter)  # type: ignore[attr-defined]


def _number_log(computation: ComputationAPI) -> None:
    """geth's simulate tracer numbers every log it sees in the block, kept or later dropped."""
    state = computation.state
    counter = computation._log_entries[-1][0]  # type: ignore[attr-defined]
    state.log_indexes[counter] = state.next_log_index  # type: ignore[attr-defined]
    state.next_log_index += 1  # type: ignore[attr-defined]


def _transferring_computation(base: type[ComputationAPI]) -> type[ComputationAPI]:
    """``base`` logging a transfer when a frame that moves value starts, and on SELFDESTRUCT."""

    def __init__(self: Any, state: StateAPI, message: MessageAPI,
                 transaction_context: TransactionContextAPI) -> None:
        base.__init__(self, state, message, transaction_context)  # type: ignore[misc]
        if message.should_transfer_value and message.value:
            recipient = message.storage_address if message.is_create else message.code_address
            _log_transfer(self, message.sender, recipient, message.value)

    def add_log_entry(self: Any, account: bytes, topics: Any, data: bytes) -> None:
        base.add_log_entry(self, account, topics, data)  # type: ignore[arg-type]
        _number_log(self)

    opcodes: dict[int, Any] = dict(base.opcodes)
    selfdestruct = opcodes.get(op.SELFDESTRUCT)
    if selfdestruct is not None:
        opcodes[op.SELFDESTRUCT] = _SelfDestructTransfer(selfdestruct)
    return type(f"Sim{base.__name__}", (base,), {"__init__": __init__, "add_log_entry": add_log_entry,
                                                     "opcodes": opcodes})


class _SelfDestructTransfer:
    """SELFDESTRUCT, logging the balance it moves to the beneficiary first (geth's OnEnter)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.mnemonic = getattr(inner, "mnemonic", "SELFDESTRUCT")
        self.gas_cost = getattr(inner, "gas_cost", 0)

    def __call__(self, computation: ComputationAPI) -> Any:
        stack = computation._stack.values  # type: ignore[attr-defined]
        if stack:
            beneficiary = (to_int(stack[-1]) & (2**160 - 1)).to_bytes(20, "big")
            contract = computation.msg.storage_address
            _log_transfer(computation, contract, beneficiary, computation.state.get_balance(contract))
        return self.inner(computation=computation)


@functools.lru_cache(maxsize=64)
def simulation_state_class(call_state_class: type[StateAPI]) -> type[StateAPI]:
    """The call state class with geth's simulate tip rule and transfer logging (built once)."""

    def get_tip(self: Any, transaction: SignedTransactionAPI) -> int:
        if self.no_base_fee and transaction.max_fee_per_gas == 0 and transaction.max_priority_fee_per_gas == 0:
            return 0
        return call_state_class.get_tip(self, transaction)

    return type(f"Sim{call_state_class.__name__}", (call_state_class,), {
        "computation_class": _transferring_computation(call_state_class.computation_class),
        "get_tip": get_tip,
        "no_base_fee": False,
        "trace_transfers": False,
    })
