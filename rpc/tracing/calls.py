"""geth's ``callTracer`` (a tree of call frames) and ``flatCallTracer`` (Parity's flat list).

Frames are named by the opcode that opened them (the transaction's own frame is a
CALL or CREATE); a DELEGATECALL or CALLCODE frame runs from the calling contract to
the code's address, as geth reports it. The transaction's frame carries the
transaction's gas limit and its receipt's gas used. ``withLog`` collects each frame's
logs with their position among its calls; logs of failed frames are dropped at the
end, as geth does. A SELFDESTRUCT shows as a child frame moving the balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth.abc import ComputationAPI, MessageAPI, StateAPI
from eth.exceptions import Revert
from eth.vm import opcode_values as op
from eth.vm.stack import to_int

from rpc.errors import unpack_revert_reason, vm_error_message
from rpc.format import JSON, data, quantity
from rpc.tracing.hooks import Tracer, TxOutcome, TxPosition, mnemonic

FRAME_OPCODES = frozenset({op.CALL, op.CALLCODE, op.DELEGATECALL, op.STATICCALL, op.CREATE, op.CREATE2})
LOG_OPCODES = frozenset({op.LOG0, op.LOG1, op.LOG2, op.LOG3, op.LOG4})
def error_message(error: Exception) -> str:
    return "execution reverted" if isinstance(error, Revert) else vm_error_message(error)


@dataclass
class CallFrame:
    """geth's ``callFrame``."""

    type: str
    sender: bytes
    to: bytes | None
    input: bytes
    gas: int
    value: int | None
    gas_used: int = 0
    output: bytes = b""
    error: str | None = None
    revert_reason: str | None = None
    calls: list[CallFrame] = field(default_factory=list)
    logs: list[JSON] = field(default_factory=list)

    def close(self, output: bytes, error: Exception | None) -> None:
        """geth's ``processOutput``: output on success, error (and revert data, reason) otherwise."""
        if error is None:
            self.output = output
            return
        self.error = error_message(error)
        if self.type in ("CREATE", "CREATE2"):
            self.to = None
        if isinstance(error, Revert) and output:
            self.output = output
            self.revert_reason = unpack_revert_reason(output)

    def drop_failed_logs(self, parent_failed: bool = False) -> None:
        failed = parent_failed or self.error is not None
        if failed:
            self.logs = []
        for call in self.calls:
            call.drop_failed_logs(failed)

    def to_json(self) -> JSON:
        frame: JSON = {"from": data(self.sender), "gas": quantity(self.gas), "gasUsed": quantity(self.gas_used)}
        if self.to is not None:
            frame["to"] = data(self.to)
        frame["input"] = data(self.input)
        if self.output:
            frame["output"] = data(self.output)
        if self.error is not None:
            frame["error"] = self.error
        if self.revert_reason:
            frame["revertReason"] = self.revert_reason
        if self.calls:
            frame["calls"] = [call.to_json() for call in self.calls]
        if self.logs:
            frame["logs"] = self.logs
        if self.value is not None:
            frame["value"] = quantity(self.value)
        frame["type"] = self.type
        return frame


@dataclass(frozen=True)
class CallTracerConfig:
    """``callTracer``'s ``tracerConfig``."""

    only_top_call: bool = False
    with_log: bool = False


class CallTracer(Tracer):
    """Builds the call tree of one transaction."""

    def __init__(self, config: CallTracerConfig = CallTracerConfig()) -> None:
        super().__init__()
        self.config = config
        self.opcodes = FRAME_OPCODES | {op.SELFDESTRUCT} | (LOG_OPCODES if config.with_log else frozenset())
        self.stack: list[CallFrame] = []
        self.root: CallFrame | None = None
        self.gas_limit = 0
        self._opened_by: dict[int, str] = {}
        """The frame opcode each depth ran last (names the frame it opens)."""

    def start(self, state: StateAPI, transaction: Any) -> None:
        self.gas_limit = transaction.gas

    def step(self, opcode: int, computation: ComputationAPI) -> None:
        if opcode in FRAME_OPCODES:
            self._opened_by[computation.msg.depth] = mnemonic(opcode, computation)
        elif opcode in LOG_OPCODES:
            self._log(opcode, computation)
        elif opcode == op.SELFDESTRUCT:
            self._selfdestruct(computation)

    def _log(self, opcode: int, computation: ComputationAPI) -> None:
        stack = computation._stack.values  # type: ignore[attr-defined]
        count = opcode - op.LOG0
        if len(stack) < 2 + count or not self.stack:
            return
        start, size = to_int(stack[-1]), to_int(stack[-2])
        topics = [data(to_int(stack[-3 - i]).to_bytes(32, "big")) for i in range(count)]
        memory = bytes(computation._memory._bytes[start:start + size])  # type: ignore[attr-defined]
        frame = self.stack[-1]
        frame.logs.append({"address": data(computation.msg.storage_address), "topics": topics,
                           "data": data(memory.ljust(size, b"\0")), "position": quantity(len(frame.calls))})

    def _selfdestruct(self, computation: ComputationAPI) -> None:
        stack = computation._stack.values  # type: ignore[attr-defined]
        if not stack or not self.stack or self.config.only_top_call:
            return
        contract = computation.msg.storage_address
        beneficiary = (to_int(stack[-1]) & (2**160 - 1)).to_bytes(20, "big")
        balance = computation.state.get_balance(contract)
        self.stack[-1].calls.append(CallFrame("SELFDESTRUCT", contract, beneficiary, b"", 0, balance))

    def enter(self, message: MessageAPI, parent: ComputationAPI | None) -> None:
        if parent is None:
            kind = "CREATE" if message.is_create else "CALL"
            sender = message.sender
        else:
            kind = self._opened_by.get(parent.msg.depth, "CALL")
            sender = parent.msg.storage_address
        to = message.code_address if kind in ("DELEGATECALL", "CALLCODE") else message.storage_address
        value = None if kind == "STATICCALL" else message.value
        gas = self.gas_limit if parent is None else message.gas
        payload = message.code if message.is_create else message.data_as_bytes  # a create's input is its init code
        self.stack.append(CallFrame(kind, sender, to, bytes(payload), gas, value))

    def exit(self, computation: ComputationAPI) -> None:
        frame = self.stack.pop()
        frame.gas_used = frame.gas - computation.get_gas_remaining()
        error = computation.error if computation.is_error else None
        frame.close(computation.output, error)
        if not self.stack:
            self.root = frame
        elif not self.config.only_top_call:
            self.stack[-1].calls.append(frame)

    def finish(self, outcome: TxOutcome) -> None:
        if self.root is None:
            return
        self.root.gas_used = outcome.gas_used
        if self.config.with_log:
            self.root.drop_failed_logs()

    def result(self) -> JSON:
        return self.root.to_json() if self.root is not None else {}


# --- flatCallTracer -----------------------------------------------------------------------------


class FlatCallTracer(CallTracer):
    """geth's ``flatCallTracer``: the call tree in Parity's ``trace_`` shape."""

    def __init__(self, include_precompiles: bool = False) -> None:
        super().__init__()
        self.include_precompiles = include_precompiles
        self.position = TxPosition()

    def locate(self, position: TxPosition) -> None:
        self.position = position

    def enter(self, message: MessageAPI, parent: ComputationAPI | None) -> None:
        super().enter(message, parent)
        if parent is not None and self.stack[-1].value is None:
            self.stack[-1].value = 0  # Parity gives every child call a value

    def exit(self, computation: ComputationAPI) -> None:
        precompile = computation.msg.code_address in computation.precompiles
        super().exit(computation)
        if self.include_precompiles or not precompile or not self.stack:
            return
        calls = self.stack[-1].calls
        if calls and calls[-1].type in ("CALL", "STATICCALL"):
            calls.pop()

    def result(self) -> list[JSON]:  # type: ignore[override]
        return [] if self.root is None else self._flatten(self.root, [])

    def _flatten(self, frame: CallFrame, address: list[int]) -> list[JSON]:
        flat = self._flat_frame(frame)
        flat["subtraces"] = len(frame.calls)
        flat["traceAddress"] = address
        flat.update({
            "blockHash": data(self.position.block_hash),
            "blockNumber": self.position.block_number,
            "transactionHash": data(self.position.tx_hash),
            "transactionPosition": self.position.index,
        })
        if frame.error is not None:
            flat["error"] = frame.error
            if frame.error != "execution reverted":
                flat.pop("result", None)
        output = [dict(sorted(flat.items()))]
        for index, call in enumerate(frame.calls):
            output.extend(self._flatten(call, [*address, index]))
        return output

    @staticmethod
    def _flat_frame(frame: CallFrame) -> JSON:
        if frame.type == "SELFDESTRUCT":
            return {"type": "suicide", "action": {"address": data(frame.sender), "balance": quantity(frame.value or 0),
                                                  "refundAddress": data(frame.to or b"")}}
        value = {} if frame.value is None else {"value": quantity(frame.value)}
        if frame.type in ("CREATE", "CREATE2"):
            result: JSON = {"code": data(frame.output), "gasUsed": quantity(frame.gas_used)}
            if frame.to is not None:
                result["address"] = data(frame.to)
            return {"type": "create", "result": result,
                    "action": {"from": data(frame.sender), "gas": quantity(frame.gas), "init": data(frame.input), **value}}
        return {"type": "call",
                "action": {"callType": frame.type.lower(), "from": data(frame.sender), "gas": quantity(frame.gas),
                           "input": data(frame.input), "to": data(frame.to or b""), **value},
                "result": {"gasUsed": quantity(frame.gas_used), "output": data(frame.output)}}
