"""The ``debug`` namespace's tracing methods, as geth's ``eth/tracers/api.go`` serves them.

``debug_traceTransaction``, ``debug_traceBlockByNumber``, ``debug_traceBlockByHash``
re-execute stored blocks (``rpc.tracing.replay``); ``debug_traceCall`` runs a call
the way eth_call does (same block context, overrides and gas cap) under a tracer.
All run on the costly-method threads. Each traced transaction is bounded by the
tracer ``timeout`` option (geth's default, 5 s), and a whole request (with the
replay of what precedes the traced transaction) by eth_call's time limit.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from rpc import params as p
from rpc.backend import BlockData, ReplicaBackend
from rpc.blockref import BlockNumber, BlockRef, BlockTag, block_number, block_ref
from rpc.callargs import (
    BlockOverrides,
    CallArgs,
    StateOverride,
    block_overrides,
    call_args,
    check_block_overrides,
    state_override,
    to_message,
)
from rpc.dispatch import Method, MethodTable
from rpc.errors import ServerError
from rpc.evm import CallFailure, CallTimeout, prepare, run
from rpc.format import JSON, data
from rpc.params import ArgumentError
from rpc.tracing.calls import CallTracer, CallTracerConfig, FlatCallTracer
from rpc.tracing.fourbyte import FourByteTracer
from rpc.tracing.hooks import Tracer, TxOutcome, traced_state_class
from rpc.tracing.prestate import PrestateTracer, PrestateTracerConfig
from rpc.tracing.replay import TracerFactory, state_before, trace_transactions
from rpc.tracing.structlog import StructLogger, StructLoggerConfig

DEFAULT_TIMEOUT = 5.0
"""geth's ``defaultTraceTimeout``."""

_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration_seconds(text: str) -> float:
    """Go's ``time.ParseDuration`` (what geth reads the ``timeout`` option with)."""
    body = text[1:] if text[:1] in "+-" else text
    position, total = 0, 0.0
    while position < len(body):
        match = _GO_DURATION.match(body, position)
        if match is None:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        if body == "0":
            return 0.0
        raise ServerError(f'time: invalid duration "{text}"')
    return -total if text.startswith("-") else total


# --- options ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceConfig:
    """geth's ``TraceConfig`` (with ``TraceCallConfig``'s overrides for debug_traceCall)."""

    logger: StructLoggerConfig = StructLoggerConfig()
    tracer: str | None = None
    timeout: str | None = None
    tracer_config: Any = None
    state_overrides: StateOverride | None = None
    block_overrides: BlockOverrides | None = None
    tx_index: int | None = None
    """debug_traceCall: run on the state before this transaction of the block, not after the block."""


_LOGGER_FIELDS: Mapping[str, Callable[[Any], Any]] = {
    "enableMemory": p.boolean,
    "disableStack": p.boolean,
    "disableStorage": p.boolean,
    "enableReturnData": p.boolean,
    "limit": p.hex_or_decimal64,
}
_CONFIG_FIELDS: Mapping[str, Callable[[Any], Any]] = {
    **_LOGGER_FIELDS,
    "tracer": p.string,
    "timeout": p.string,
    "tracerConfig": lambda value: value,
    "reexec": p.hex_or_decimal64,
}
_CALL_CONFIG_FIELDS: Mapping[str, Callable[[Any], Any]] = {
    **_CONFIG_FIELDS,
    "stateOverrides": state_override,
    "blockOverrides": block_overrides,
    "txIndex": p.uint,
}


def _decode_config(value: Any, fields: Mapping[str, Callable[[Any], Any]], struct: str) -> TraceConfig:
    decoded = p.decode_struct(value, struct, fields)
    logger = StructLoggerConfig(
        enable_memory=decoded.get("enableMemory", False),
        disable_stack=decoded.get("disableStack", False),
        disable_storage=decoded.get("disableStorage", False),
        enable_return_data=decoded.get("enableReturnData", False),
        limit=decoded.get("limit", 0),
    )
    return TraceConfig(logger, decoded.get("tracer"), decoded.get("timeout"), decoded.get("tracerConfig"),
                       decoded.get("stateOverrides"), decoded.get("blockOverrides"), decoded.get("txIndex"))


def trace_config(value: Any) -> TraceConfig:
    return _decode_config(value, _CONFIG_FIELDS, "tracers.TraceConfig")


def trace_call_config(value: Any) -> TraceConfig:
    return _decode_config(value, _CALL_CONFIG_FIELDS, "tracers.TraceCallConfig")


# --- tracers by name ----------------------------------------------------------------------


def _flag_config(value: Any, struct: str, names: tuple[str, ...]) -> dict[str, bool]:
    """A tracer's ``tracerConfig`` of booleans (geth: unknown keys ignored)."""
    if value is None:
        return {}
    try:
        return p.decode_struct(value, struct, {name: p.boolean for name in names})
    except ArgumentError as error:
        raise ServerError(str(error)) from None


def _call_tracer(value: Any) -> TracerFactory:
    flags = _flag_config(value, "native.callTracerConfig", ("onlyTopCall", "withLog"))
    config = CallTracerConfig(only_top_call=flags.get("onlyTopCall", False), with_log=flags.get("withLog", False))
    return lambda: CallTracer(config)


def _flat_call_tracer(value: Any) -> TracerFactory:
    flags = _flag_config(value, "native.flatCallTracerConfig", ("convertParityErrors", "includePrecompiles"))
    return lambda: FlatCallTracer(include_precompiles=flags.get("includePrecompiles", False))


def _prestate_tracer(value: Any) -> TracerFactory:
    flags = _flag_config(value, "native.prestateTracerConfig", ("diffMode", "disableCode", "disableStorage"))
    config = PrestateTracerConfig(diff_mode=flags.get("diffMode", False), disable_code=flags.get("disableCode", False),
                                  disable_storage=flags.get("disableStorage", False))
    return lambda: PrestateTracer(config)


NAMED_TRACERS: Mapping[str, Callable[[Any], TracerFactory]] = {
    "callTracer": _call_tracer,
    "flatCallTracer": _flat_call_tracer,
    "prestateTracer": _prestate_tracer,
    "4byteTracer": lambda value: FourByteTracer,
    "noopTracer": lambda value: Tracer,
}
"""geth's built-in native tracers, by the name a client passes as ``tracer``."""


@dataclass(frozen=True)
class TraceRequest:
    """What one request traces with, and for how long."""

    new_tracer: TracerFactory
    timeout: float
    """Seconds one traced transaction may run (geth's tracer ``timeout``)."""
    deadline: float
    """When the whole request stops (``time.monotonic``): eth_call's time limit."""

    def tx_deadline(self) -> float:
        """The deadline of a transaction traced from now."""
        return min(time.monotonic() + self.timeout, self.deadline)


def _request(backend: ReplicaBackend, config: TraceConfig | None) -> TraceRequest:
    config = config or TraceConfig()
    timeout = DEFAULT_TIMEOUT if config.timeout is None else go_duration_seconds(config.timeout)
    deadline = time.monotonic() + backend.limits.call_timeout_seconds
    if config.tracer is None or config.tracer == "":
        logger = config.logger
        return TraceRequest(lambda: StructLogger(logger), timeout, deadline)
    make = NAMED_TRACERS.get(config.tracer)
    if make is None:
        raise ServerError(f"tracer not found: {config.tracer} (JavaScript tracers are not supported)")
    return TraceRequest(make(config.tracer_config), timeout, deadline)


# --- methods ---------------------------------------------------------------------------------


def _trace_block(backend: ReplicaBackend, block: BlockData, config: TraceConfig | None) -> list[JSON]:
    request = _request(backend, config)
    try:
        return [{"txHash": data(block.transaction_hash(index)), "result": tracer.result()}
                for index, tracer in trace_transactions(backend, block, request.new_tracer, request.timeout,
                                                        request.deadline)]
    except CallTimeout:
        raise ServerError("execution timeout") from None


def debug_trace_transaction(backend: ReplicaBackend, tx_hash: bytes, config: TraceConfig | None) -> Any:
    location = backend.transaction_location(tx_hash)
    if location is None:
        raise ServerError("transaction not found")
    block, index = location
    request = _request(backend, config)
    try:
        _, tracer = next(trace_transactions(backend, block, request.new_tracer, request.timeout, request.deadline,
                                            only=index))
    except CallTimeout:
        raise ServerError("execution timeout") from None
    return tracer.result()


def debug_trace_block_by_number(backend: ReplicaBackend, number: BlockNumber, config: TraceConfig | None) -> list[JSON]:
    block = backend.block_by_number(number)
    if block is None:
        raise ServerError(f"block #{number} not found")
    return _trace_block(backend, block, config)


def debug_trace_block_by_hash(backend: ReplicaBackend, block_hash: bytes, config: TraceConfig | None) -> list[JSON]:
    block = backend.block_by_hash(block_hash)
    if block is None:
        raise ServerError(f"block {data(block_hash)} not found")
    return _trace_block(backend, block, config)


def debug_trace_call(backend: ReplicaBackend, args: CallArgs, ref: BlockRef, config: TraceConfig | None) -> Any:
    """geth's ``TraceCall``: the call on the block's own context and post-state (or the state
    before its ``txIndex``-th transaction), traced."""
    config = config or TraceConfig()
    if ref.number is BlockTag.PENDING:
        raise ServerError("tracing on top of pending is not supported")
    header = backend.resolve_ref(ref)
    check_block_overrides(config.block_overrides)
    request = _request(backend, config)
    base = None
    if config.tx_index is not None:
        base, root = state_before(backend, backend.block(header), config.tx_index, request.deadline)
        header = header.copy(state_root=root)
    env = prepare(backend, header, config.block_overrides, config.state_overrides, base)
    message = to_message(args, backend.limits.call_gas_cap, env.base_fee, getattr(header, "base_fee_per_gas", None),
                         backend.chain_id)
    tracer = request.new_tracer()
    env = replace(env, call_class=traced_state_class(backend.derived, env.call_class, tracer, request.deadline))
    try:
        result = run(env, message, request.tx_deadline())
    except CallFailure as failure:
        raise ServerError(f"tracing failed: {failure.message}") from None
    except CallTimeout:
        raise ServerError("execution timeout") from None
    tracer.finish(TxOutcome(result.gas_used, result.output, result.error))
    return tracer.result()


CONFIG = p.optional(trace_config)

METHODS: MethodTable = {
    "debug_traceTransaction": Method(debug_trace_transaction, (p.required(p.hash32), CONFIG), offload=True),
    "debug_traceBlockByNumber": Method(debug_trace_block_by_number, (p.required(block_number), CONFIG), offload=True),
    "debug_traceBlockByHash": Method(debug_trace_block_by_hash, (p.required(p.hash32), CONFIG), offload=True),
    "debug_traceCall": Method(debug_trace_call, (p.required(call_args), p.required(block_ref),
                                                 p.optional(trace_call_config)), offload=True),
}
