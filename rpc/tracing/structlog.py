"""geth's struct logger (the default tracer): one entry per opcode executed.

Entries take geth's legacy JSON shape: stack words as minimal hex, memory as
0x-prefixed 32-byte chunks, storage as the words this contract's SLOADs and
SSTOREs have seen so far (shown on those two opcodes only), the refund counter
when it is not zero. An entry's gas cost is what the opcode charged; for calls it
includes the gas handed to the callee, as geth counts it (creates do not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth.abc import ComputationAPI, MessageAPI
from eth.exceptions import OutOfGas
from eth.vm import opcode_values as op
from eth.vm.stack import to_int

from rpc.errors import vm_error_message
from rpc.format import JSON, data, word
from rpc.tracing.hooks import Tracer, TxOutcome, mnemonic

CREATE_OPCODES = frozenset({op.CREATE, op.CREATE2})
COST_KNOWN = -1
"""Stands for the opcode of a pending entry whose cost the callee's entry already settled."""


@dataclass(frozen=True)
class StructLoggerConfig:
    """geth's ``logger.Config`` options."""

    enable_memory: bool = False
    disable_stack: bool = False
    disable_storage: bool = False
    enable_return_data: bool = False
    limit: int = 0
    """Most entries recorded (0: no limit)."""


def _unpaid(error: Exception | None) -> int:
    """The charge an opcode ran out of gas on: geth counts it in the step's cost."""
    if not isinstance(error, OutOfGas):
        return 0
    match = re.search(r"Needed (\d+)", str(error))
    return int(match.group(1)) if match else 0


class StructLogger(Tracer):
    """Records every opcode step of the transaction."""

    opcodes = None

    def __init__(self, config: StructLoggerConfig) -> None:
        super().__init__()
        self.config = config
        self.logs: list[JSON] = []
        self.storage: dict[bytes, dict[int, int]] = {}
        self.frames: list[ComputationAPI] = []
        self._pending: list[tuple[JSON, int, int]] = []
        """Entries whose cost is not known yet: (entry, opcode, gas before), innermost last."""
        self.outcome: TxOutcome | None = None
        self._pc_after: dict[int, int] = {}
        """Where each open frame's counter stood after its last step, by depth."""
        self._below: tuple[int, int] = (-1, 0)
        """(depth, refunds of the frames under it), for the depth last stepped."""
        self._children_refund: dict[int, int] = {}
        """The refunds of each open frame's finished calls, by depth (py-evm sums a frame's
        refunds only at the end; geth's counter is global and shown at every step)."""

    def _pc(self, opcode: int, computation: ComputationAPI) -> int | None:
        """The opcode's position; None for the STOP py-evm runs on empty code (geth runs nothing).

        py-evm runs an implicit STOP past the code's end without moving the counter.
        """
        counter = computation.code.program_counter
        if opcode == op.STOP and counter == len(computation.code):
            if counter == 0:
                return None
            if self._pc_after.get(computation.msg.depth) == counter:
                return counter
        return counter - 1

    def step(self, opcode: int, computation: ComputationAPI) -> None:
        depth = computation.msg.depth
        del self.frames[depth:]
        self.frames.append(computation)
        gas = computation.get_gas_remaining()
        pc = self._pc(opcode, computation)
        entry: JSON = {
            "pc": pc,
            "op": mnemonic(opcode, computation),
            "gas": gas,
            "gasCost": 0,
            "depth": depth + 1,
        }
        self._pending.append((entry, opcode, gas))
        if pc is not None and (not self.config.limit or len(self.logs) < self.config.limit):
            self._describe(entry, opcode, computation)
            self.logs.append(entry)

    def _describe(self, entry: JSON, opcode: int, computation: ComputationAPI) -> None:
        stack = computation._stack.values  # type: ignore[attr-defined]
        if not self.config.disable_stack:
            entry["stack"] = [hex(to_int(value)) for value in stack]
        if self.config.enable_return_data and computation.return_data:
            entry["returnData"] = data(computation.return_data)
        memory = computation._memory._bytes  # type: ignore[attr-defined]
        if self.config.enable_memory and memory:
            entry["memory"] = [data(bytes(memory[i:i + 32])) for i in range(0, len(memory) - 31, 32)]
        if not self.config.disable_storage and opcode in (op.SLOAD, op.SSTORE) and stack:
            self._record_storage(entry, opcode, computation, stack)
        refund = self._refund_below(computation.msg.depth) + self._frame_refund(computation)
        if refund > 0:
            entry["refund"] = refund

    def _frame_refund(self, frame: ComputationAPI) -> int:
        """What py-evm's ``get_gas_refund`` will say of a running frame."""
        meter = frame._gas_meter  # type: ignore[attr-defined]
        return frame.msg.refund + meter.gas_refunded + self._children_refund.get(frame.msg.depth, 0)

    def _refund_below(self, depth: int) -> int:
        """The refunds of the frames under the running one (they change only when the depth does)."""
        if self._below[0] != depth:
            self._below = (depth, sum(self._frame_refund(frame) for frame in self.frames[:-1]))
        return self._below[1]

    def _record_storage(self, entry: JSON, opcode: int, computation: ComputationAPI, stack: list[Any]) -> None:
        address = computation.msg.storage_address
        slot = to_int(stack[-1])
        seen = self.storage.setdefault(address, {})
        if opcode == op.SLOAD:
            seen[slot] = computation.state.get_storage(address, slot)
        elif len(stack) >= 2:
            seen[slot] = to_int(stack[-2])
        else:
            return
        entry["storage"] = {word(key): word(value) for key, value in seen.items()}

    def enter(self, message: MessageAPI, parent: ComputationAPI | None) -> None:
        """The calling opcode's cost is now known: what left the caller (less a create's gift)."""
        self._pc_after.pop(message.depth, None)
        self._children_refund[message.depth] = 0
        if parent is None or not self._pending:
            return
        entry, opcode, gas = self._pending[-1]
        cost = gas - parent.get_gas_remaining()
        entry["gasCost"] = cost - message.gas if opcode in CREATE_OPCODES else cost
        self._pending[-1] = (entry, COST_KNOWN, gas)

    def exit(self, computation: ComputationAPI) -> None:
        depth = computation.msg.depth
        self._below = (-1, 0)
        if depth > 0:
            self._children_refund[depth - 1] = self._children_refund.get(depth - 1, 0) + computation.get_gas_refund()

    def stepped(self, computation: ComputationAPI, error: Exception | None) -> None:
        entry, opcode, gas = self._pending.pop()
        self._pc_after[computation.msg.depth] = computation.code.program_counter
        if opcode != COST_KNOWN:
            entry["gasCost"] = gas - computation._gas_meter.gas_remaining + _unpaid(error)  # type: ignore[attr-defined]
        if error is not None:
            entry["error"] = vm_error_message(error)

    def finish(self, outcome: TxOutcome) -> None:
        self.outcome = outcome

    def result(self) -> JSON:
        assert self.outcome is not None
        return {
            "gas": self.outcome.gas_used,
            "failed": self.outcome.error is not None,
            "returnValue": data(self.outcome.output),
            "structLogs": self.logs,
        }
