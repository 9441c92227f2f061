"""eth_simulateV1: chained simulated blocks of calls, as go-ethereum's ``internal/ethapi/simulate.go``.

The request names a base block and up to 256 ``blockStateCalls``; each becomes a block
on top of the previous one (gaps in the numbers filled with empty blocks, 12 s apart
by default), with its block and state overrides, run in one in-memory overlay
(``rpc.simblock``). Without ``validation`` the base fee is zero unless overridden and
nonces are not checked; with it, geth's transaction checks apply. ``traceTransfers``
adds ERC-7528 logs for ether moves (``rpc.simstate``). One gas pool (the call gas cap)
and one deadline (the call time limit) cover the whole request, which runs on the
costly-method threads like eth_call.

Errors carry geth's codes: a call refused before execution ends the request
(-38010 nonce too low ... -38025 initcode too large, -32603 otherwise); a call that
fails while executing is reported in its result (3 with revert data, -32015 otherwise).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from eth.vm.forks.shanghai.withdrawals import Withdrawal
from eth_typing import Address

from rpc import params as p
from rpc.backend import BlockData, ReplicaBackend
from rpc.blockref import LATEST, BlockRef, block_ref
from rpc.callargs import CallArgs, StateOverride, block_overrides, call_args, state_override
from rpc.dispatch import Method, MethodTable
from rpc.errors import INTERNAL_ERROR, INVALID_PARAMS, ExecutionReverted, RpcError
from rpc.evm import CallResult, CallTimeout, go_duration
from rpc.format import JSON, block_json, data, quantity, transaction_json, word
from rpc.simblock import (
    BlockGasLimitReached,
    SimBlock,
    SimBlockOverrides,
    SimFailure,
    SimTimeout,
    SimulatedBlock,
    Simulation,
    process_block,
)
from storage.overlay import OverlayDB

MAX_SIMULATE_BLOCKS = 256
"""geth's ``maxSimulateBlocks``: the most blocks one request may span (gaps included)."""
TIMESTAMP_INCREMENT = 12
"""Seconds between a block and the next when the request gives no time."""

BLOCK_GAS_LIMIT_REACHED = -38015
BLOCK_NUMBER_INVALID = -38020
BLOCK_TIMESTAMP_INVALID = -38021
CLIENT_LIMIT_EXCEEDED = -38026
VM_ERROR = -32015

TX_ERROR_CODES: tuple[tuple[str, int], ...] = (
    ("nonce too low", -38010),
    ("nonce too high", -38011),
    ("max fee per gas less than block base fee", -38012),
    ("intrinsic gas too low", -38013),
    ("insufficient funds", -38014),
    ("sender not an eoa", -38024),
    ("max initcode size exceeded", -38025),
    ("max priority fee per gas higher than max fee per gas", INVALID_PARAMS),
)
"""geth's ``txValidationError``: the code for a refused call, by its core error (else -32603)."""


# --- the request -------------------------------------------------------------------------------


def _withdrawal(value: Any) -> Withdrawal:
    fields = p.decode_struct(value, "Withdrawal", {
        "index": p.uint64, "validatorIndex": p.uint64, "address": p.address, "amount": p.uint64,
    })
    return Withdrawal(fields.get("index", 0), fields.get("validatorIndex", 0),
                      Address(fields.get("address", bytes(20))), fields.get("amount", 0))


def _sim_block_overrides(value: Any) -> SimBlockOverrides:
    """``override.BlockOverrides`` with the two fields only eth_simulateV1 applies."""
    extra = p.decode_struct(value, "BlockOverrides", {
        "beaconRoot": p.hash32,
        "withdrawals": p.list_of(_withdrawal, "types.Withdrawals"),
    })
    return SimBlockOverrides(block_overrides(value), extra.get("beaconRoot"), tuple(extra.get("withdrawals") or ()))


@dataclass(frozen=True)
class BlockStateCall:
    """One entry of ``blockStateCalls`` as the client gave it (geth's ``simBlock``)."""

    overrides: SimBlockOverrides
    state: StateOverride | None
    calls: tuple[CallArgs, ...]


@dataclass(frozen=True)
class SimOptions:
    """geth's ``simOpts``: the blocks and how to run them."""

    blocks: tuple[BlockStateCall, ...]
    trace_transfers: bool
    """Log ether moves as ERC-7528 transfers."""
    validation: bool
    """Check nonces and fees as a block would; base fees follow the parent."""
    full_transactions: bool
    """Answer transaction objects, not hashes."""


def _block_state_call(value: Any) -> BlockStateCall:
    fields = p.decode_struct(value, "simBlock", {
        "blockOverrides": _sim_block_overrides,
        "stateOverrides": state_override,
        "calls": p.list_of(call_args, "[]ethapi.TransactionArgs"),
    })
    return BlockStateCall(fields.get("blockOverrides") or SimBlockOverrides(), fields.get("stateOverrides"),
                          tuple(fields.get("calls") or ()))


def sim_opts(value: Any) -> SimOptions:
    """Decode geth's ``simOpts``."""
    fields = p.decode_struct(value, "simOpts", {
        "blockStateCalls": p.list_of(_block_state_call, "[]ethapi.simBlock"),
        "traceTransfers": p.boolean,
        "validation": p.boolean,
        "returnFullTransactions": p.boolean,
    })
    return SimOptions(tuple(fields.get("blockStateCalls") or ()), bool(fields.get("traceTransfers")),
                      bool(fields.get("validation")), bool(fields.get("returnFullTransactions")))


def sanitize_chain(base_number: int, base_time: int, blocks: Sequence[BlockStateCall]) -> list[SimBlock]:
    """geth's ``sanitizeChain``: numbers and times strictly increasing, gaps filled with empty blocks."""
    chain: list[SimBlock] = []
    previous_number, previous_time = base_number, base_time
    for entry in blocks:
        overrides = entry.overrides
        number = overrides.fields.number if overrides.fields.number is not None else previous_number + 1
        if number <= previous_number:
            raise RpcError(f"block numbers must be in order: {number} <= {previous_number}", code=BLOCK_NUMBER_INVALID)
        if number - base_number > MAX_SIMULATE_BLOCKS:
            raise RpcError("too many blocks", code=CLIENT_LIMIT_EXCEEDED)
        for gap_number in range(previous_number + 1, number):
            previous_time += TIMESTAMP_INCREMENT
            chain.append(SimBlock(gap_number, previous_time, SimBlockOverrides()))
        previous_number = number
        given_time = overrides.fields.time
        if given_time is None:
            given_time = previous_time + TIMESTAMP_INCREMENT
        elif given_time <= previous_time:
            raise RpcError(f"block timestamps must be in order: {given_time} <= {previous_time}",
                           code=BLOCK_TIMESTAMP_INVALID)
        previous_time = given_time
        chain.append(SimBlock(number, given_time, overrides, entry.state, entry.calls))
    return chain


# --- the method --------------------------------------------------------------------------------


def eth_simulate_v1(backend: ReplicaBackend, opts: SimOptions, ref: BlockRef | None) -> list[JSON]:
    if not opts.blocks:
        raise RpcError("empty input", code=INVALID_PARAMS)
    if len(opts.blocks) > MAX_SIMULATE_BLOCKS:
        raise RpcError("too many blocks", code=CLIENT_LIMIT_EXCEEDED)
    base = backend.resolve_ref(ref or LATEST)
    sim = Simulation(
        backend=backend,
        base=base,
        validate=opts.validation,
        trace_transfers=opts.trace_transfers,
        deadline=time.monotonic() + backend.limits.call_timeout_seconds,
        gas_pool=backend.limits.call_gas_cap or 2**64 - 1,
        db=OverlayDB(backend.db),
    )
    chain = sanitize_chain(base.block_number, base.timestamp, opts.blocks)
    return [simulated_block_json(backend, block, opts.full_transactions) for block in _run(sim, chain)]


def _run(sim: Simulation, chain: list[SimBlock]) -> list[SimulatedBlock]:
    """Every block in order; geth's errors for refusals, limits and the time limit."""
    try:
        return [process_block(sim, block) for block in chain]
    except SimFailure as failure:
        raise RpcError(failure.message, code=_tx_error_code(failure.message)) from None
    except BlockGasLimitReached as error:
        raise RpcError(str(error), code=BLOCK_GAS_LIMIT_REACHED) from None
    except (SimTimeout, CallTimeout):
        timeout = go_duration(sim.backend.limits.call_timeout_seconds)
        raise RpcError(f"execution aborted (timeout = {timeout})", code=INTERNAL_ERROR) from None


def _tx_error_code(message: str) -> int:
    text = message.removeprefix("err: ")
    for prefix, code in TX_ERROR_CODES:
        if text.startswith(prefix):
            return code
    return INTERNAL_ERROR


# --- the answer ---------------------------------------------------------------------------------


def simulated_block_json(backend: ReplicaBackend, simulated: SimulatedBlock, full: bool) -> JSON:
    """geth's ``simBlockResult``: the block as ``eth_getBlockByNumber`` shows it, plus ``calls``."""
    block = BlockData(simulated.block, simulated.vm_class, backend.chaindb)
    fields = block_json(block, False)
    timestamp = quantity(block.header.timestamp)
    if full:
        fields["transactions"] = [
            transaction_json(tx, simulated.senders[index], block, index)
            for index, tx in enumerate(block.transactions)
        ]
    calls = []
    for index, outcome in enumerate(simulated.outcomes):
        logs = []
        for log_index, address, topics, payload in outcome.logs:
            logs.append({
                "address": data(address),
                "topics": [word(topic) for topic in topics],
                "data": data(payload),
                "blockNumber": quantity(block.number),
                "transactionHash": data(block.transaction_hash(index)),
                "transactionIndex": quantity(index),
                "blockHash": data(block.hash),
                "blockTimestamp": timestamp,
                "logIndex": quantity(log_index),
                "removed": False,
            })
        calls.append(_call_json(outcome.result, logs, outcome.max_used_gas))
    fields["calls"] = calls
    return fields


def _call_json(result: CallResult, logs: list[JSON], max_used_gas: int) -> JSON:
    call: JSON = {
        "returnData": data(b"" if result.failed else result.output),
        "logs": logs if not result.failed else [],
        "gasUsed": quantity(result.gas_used),
        "maxUsedGas": quantity(max_used_gas),
        "status": quantity(0 if result.failed else 1),
    }
    if result.failed:
        if result.revert_data or result.error_message == "execution reverted":
            reverted = ExecutionReverted(result.output)
            call["error"] = {"message": reverted.message, "code": reverted.code, "data": data(result.output)}
        else:
            call["error"] = {"message": result.error_message, "code": VM_ERROR}
    return call


METHODS: MethodTable = {
    "eth_simulateV1": Method(eth_simulate_v1, (p.required(sim_opts), p.optional(block_ref)), offload=True),
}

__all__ = ["METHODS", "eth_simulate_v1", "sanitize_chain", "sim_opts"]
