"""geth's ``4byteTracer``: how often each selector was called, with its argument size.

Counts every CALL, CALLCODE, DELEGATECALL and STATICCALL frame (the transaction's
own call too) whose input holds a selector, keyed ``0x<selector>-<argument bytes>``;
creates and calls to precompiles are not counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from eth.abc import ComputationAPI, MessageAPI, StateAPI

from rpc.tracing.calls import CallTracer, CallTracerConfig

COUNTED = frozenset({"CALL", "CALLCODE", "DELEGATECALL", "STATICCALL"})


class FourByteTracer(CallTracer):
    """Reuses the call tracer's naming of frames; keeps only the selector counts."""

    def __init__(self) -> None:
        super().__init__(CallTracerConfig(only_top_call=True))
        self.counts: Counter[str] = Counter()
        self.precompiles: frozenset[bytes] = frozenset()

    def start(self, state: StateAPI, transaction: Any) -> None:
        super().start(state, transaction)
        self.precompiles = frozenset(state.computation_class.get_precompiles())

    def enter(self, message: MessageAPI, parent: ComputationAPI | None) -> None:
        super().enter(message, parent)
        frame = self.stack[-1]
        if len(frame.input) >= 4 and frame.type in COUNTED and frame.to not in self.precompiles:
            self.counts[f"0x{frame.input[:4].hex()}-{len(frame.input) - 4}"] += 1

    def result(self) -> dict[str, int]:  # type: ignore[override]
        return dict(self.counts)
