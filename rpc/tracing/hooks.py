"""py-evm classes that report execution to a tracer, as geth's ``tracing.Hooks`` do.

A traced state class runs a computation class whose opcode table wraps the opcodes
the tracer asks for (plus jumps and calls, where the deadline is checked, as in
``rpc.evmhooks``), and whose ``apply_message``/``apply_create_message`` report each
call frame as it is entered and left. Its transaction executor tells the tracer a
transaction starts before gas is bought, so a tracer sees the state as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from eth.abc import ComputationAPI, MessageAPI, StateAPI
from eth.exceptions import Halt, Revert, VMError

from rpc.cache import LRU
from rpc.evmhooks import DEADLINE_OPCODES, CallTimeout

GETH_MNEMONICS = {0x20: "KECCAK256", 0x44: "DIFFICULTY"}
"""Where py-evm's opcode names differ from geth's (geth keeps DIFFICULTY after the merge)."""


@dataclass(frozen=True)
class TxOutcome:
    """How the traced transaction ended, as geth's ``ExecutionResult`` tells it."""

    gas_used: int
    """Gas the transaction used (after refunds), as its receipt says."""
    output: bytes
    """Return data, or the revert data of a reverted transaction."""
    error: Exception | None
    """The top frame's failure, if any."""


@dataclass(frozen=True)
class TxPosition:
    """Where a traced transaction sits (zeros for debug_traceCall, as in geth)."""

    block_hash: bytes = bytes(32)
    block_number: int = 0
    tx_hash: bytes = bytes(32)
    index: int = 0


class Tracer:
    """A tracer's hooks; this base records nothing (geth's ``noopTracer``)."""

    opcodes: frozenset[int] | None = frozenset()
    """Opcodes whose steps the tracer observes (None: every opcode)."""

    def __init__(self) -> None:
        self.open_frames: list[MessageAPI] = []

    def locate(self, position: TxPosition) -> None:
        """Told where the transaction sits in its block, before it starts."""

    def start(self, state: StateAPI, transaction: Any) -> None:
        """The transaction begins; ``state`` is still as it was before it."""

    def enter(self, message: MessageAPI, parent: ComputationAPI | None) -> None:
        """A call frame begins (``parent`` is None for the transaction's own frame)."""

    def exit(self, computation: ComputationAPI) -> None:
        """A call frame ended."""

    def step(self, opcode: int, computation: ComputationAPI) -> None:
        """An observed opcode is about to run."""

    def stepped(self, computation: ComputationAPI, error: Exception | None) -> None:
        """The opcode of the last ``step`` ran (``error``: how it failed)."""

    def finish(self, outcome: TxOutcome) -> None:
        """The transaction ended."""

    def result(self) -> Any:
        """The JSON result geth's tracer of the same name returns."""
        return {}


def mnemonic(opcode: int, computation: ComputationAPI) -> str:
    """geth's name of an opcode being traced (a ``TracedOpcode`` of the computation)."""
    return computation.opcodes[opcode].name  # type: ignore[attr-defined, no-any-return]


class TracedOpcode:
    """Wraps one opcode: checks the deadline on jumps and calls, and reports the step around it."""

    def __init__(self, value: int, inner: Callable[..., Any]) -> None:
        self.value = value
        self.inner = inner
        self.mnemonic = getattr(inner, "mnemonic", "")
        self.gas_cost = getattr(inner, "gas_cost", 0)
        self.name = GETH_MNEMONICS.get(value, self.mnemonic or hex(value))
        self.checks_deadline = value in DEADLINE_OPCODES

    def __call__(self, computation: ComputationAPI) -> Any:
        state = computation.state
        if self.checks_deadline and time.monotonic() > state.call_deadline:  # type: ignore[attr-defined]
            raise CallTimeout()
        tracer: Tracer | None = state.tracer  # type: ignore[attr-defined]
        if tracer is None:
            return self.inner(computation=computation)
        tracer.step(self.value, computation)
        try:
            result = self.inner(computation=computation)
        except (Halt, Revert):
            tracer.stepped(computation, None)
            raise
        except VMError as error:
            tracer.stepped(computation, error)
            raise
        tracer.stepped(computation, None)
        return result


def _framed(apply: Callable[..., ComputationAPI]) -> Any:
    """A frame entry point that reports the frame (once: create messages pass twice)."""

    def traced(cls: Any, state: StateAPI, message: MessageAPI, transaction_context: Any,
               parent_computation: ComputationAPI | None = None) -> ComputationAPI:
        tracer: Tracer | None = state.tracer  # type: ignore[attr-defined]
        if tracer is None or (tracer.open_frames and tracer.open_frames[-1] is message):
            return apply(cls, state, message, transaction_context, parent_computation)
        tracer.open_frames.append(message)
        tracer.enter(message, parent_computation)
        try:
            computation = apply(cls, state, message, transaction_context, parent_computation)
        finally:
            tracer.open_frames.pop()
        tracer.exit(computation)
        return computation

    return classmethod(traced)


def traced_computation_class(base: type[ComputationAPI], opcodes: frozenset[int] | None) -> type[ComputationAPI]:
    """``base`` with the tracer's opcodes (and the deadline's) wrapped and its frames reported."""
    table: dict[int, Any] = dict(base.opcodes)
    wrapped = table.keys() if opcodes is None else (opcodes | DEADLINE_OPCODES) & table.keys()
    for value in wrapped:
        table[value] = TracedOpcode(value, table[value])
    return type(f"Traced{base.__name__}", (base,), {
        "opcodes": table,
        "apply_message": _framed(base.apply_message.__func__),  # type: ignore[attr-defined]
        "apply_create_message": _framed(base.apply_create_message.__func__),  # type: ignore[attr-defined]
    })


def _traced_base(base: type[StateAPI], opcodes: frozenset[int] | None) -> type[StateAPI]:
    """``base`` running a traced computation class, its executor reporting transaction starts."""
    executor_base = base.transaction_executor_class

    def build_evm_message(self: Any, transaction: Any) -> MessageAPI:
        if self.vm_state.tracer is not None:
            self.vm_state.tracer.start(self.vm_state, transaction)
        return executor_base.build_evm_message(self, transaction)  # type: ignore[arg-type]

    executor = type(f"Traced{executor_base.__name__}", (executor_base,), {"build_evm_message": build_evm_message})
    return type(f"Traced{base.__name__}", (base,), {
        "computation_class": traced_computation_class(base.computation_class, opcodes),
        "transaction_executor_class": executor,
        "tracer": None,
        "call_deadline": float("inf"),
    })


def traced_state_class(classes: LRU[Hashable, object], base: type[StateAPI], tracer: Tracer,
                       deadline: float) -> type[StateAPI]:
    """``base`` running traced code, reporting to ``tracer`` until ``deadline``.

    The costly part (a wrapped opcode table, three classes: 0.2-0.4 ms) is built once per
    (state class, traced opcodes) and kept in ``classes``; each request only subclasses it
    to carry its tracer and deadline (instances may set their own ``tracer``, None: untraced).
    """
    key = ("traced state class", base, tracer.opcodes)
    traced: Any = classes.get(key) or classes.put(key, _traced_base(base, tracer.opcodes))
    return type(traced.__name__, (traced,), {"tracer": tracer, "call_deadline": deadline})
