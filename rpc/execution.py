"""EVM execution methods: eth_call, eth_estimateGas, eth_createAccessList.

Each resolves the requested block, prepares its context and post-state with any
overrides (``rpc.evm.prepare``), turns the arguments into a message with geth's
defaults, and runs it on an in-memory overlay (``rpc.evm.run``). They run on a
worker thread (``offload``) under the call gas cap and the call time limit.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import rlp
from eth_utils import keccak

from chain.osaka import TRANSACTION_GAS_LIMIT_CAP, OsakaVM
from rpc import budget
from rpc import params as p
from rpc.backend import ReplicaBackend
from rpc.callargs import (
    CallArgs,
    CallMessage,
    block_overrides,
    call_args,
    check_block_overrides,
    state_override,
    to_message,
    BlockOverrides,
    StateOverride,
)
from rpc.dispatch import Method, MethodTable
from rpc.errors import ExecutionReverted, ServerError
from rpc.evm import (
    GAS_TX,
    AccessTracer,
    CallEnvironment,
    CallFailure,
    CallResult,
    CallTimeout,
    created_address,
    go_duration,
    prepare,
    run,
)
from rpc.fees import suggest_tip
from rpc.shedding import pause_while_behind
from rpc.format import JSON, access_list_json, data, quantity
from rpc.blockref import LATEST, BlockRef, block_ref
from rpc.callstate import shared_account
from rpc.statedb import AccountState

ESTIMATE_ERROR_RATIO = 0.015
CALL_STIPEND = 2300


def _deadline(backend: ReplicaBackend) -> float:
    return budget.call_deadline(backend.limits)


def _run(backend: ReplicaBackend, env: CallEnvironment, message: CallMessage, deadline: float,
         tracer: AccessTracer | None = None) -> CallResult:
    """``rpc.evm.run``, its gas charged to the request's budget, pausing while the apply agent is behind."""
    result = run(env, message, deadline, tracer, functools.partial(pause_while_behind, backend.behind, deadline))
    budget.charge(result.gas_used + result.refunded)
    return result


def _timeout_error(backend: ReplicaBackend) -> ServerError:
    return ServerError(f"execution aborted (timeout = {go_duration(backend.limits.call_timeout_seconds)})")


def _environment(backend: ReplicaBackend, ref: BlockRef | None, block: BlockOverrides | None,
                 state: StateOverride | None) -> CallEnvironment:
    header = backend.resolve_ref(ref or LATEST)
    check_block_overrides(block)
    return prepare(backend, header, block, state)


def _account(env: CallEnvironment, address: bytes) -> AccountState:
    """An account in the environment's (overridden) state, read as its calls read it."""
    return shared_account(env.reads, env.db, env.state_root, address)


def _header_base_fee(env: CallEnvironment) -> int | None:
    return getattr(env.header, "base_fee_per_gas", None)


# --- eth_call -------------------------------------------------------------------------------


def eth_call(backend: ReplicaBackend, args: CallArgs, ref: BlockRef | None,
             state: StateOverride | None, block: BlockOverrides | None) -> str:
    env = _environment(backend, ref, block, state)
    message = to_message(args, budget.gas_cap(backend.limits), env.base_fee, _header_base_fee(env),
                         backend.chain_id)
    try:
        result = _run(backend, env, message, _deadline(backend))
    except CallFailure as failure:
        raise ServerError(f"err: {failure.message} (supplied gas {message.gas})") from None
    except CallTimeout:
        raise _timeout_error(backend) from None
    return data(_outcome(result))


def _outcome(result: CallResult) -> bytes:
    """The output, or geth's error: code 3 with the data for a revert that has some."""
    if result.revert_data:
        raise ExecutionReverted(result.revert_data)
    if result.failed:
        raise ServerError(result.error_message)
    return result.output


# --- eth_estimateGas --------------------------------------------------------------------------


def eth_estimate_gas(backend: ReplicaBackend, args: CallArgs, ref: BlockRef | None,
                     state: StateOverride | None, block: BlockOverrides | None) -> str:
    """geth's ``gasestimator.Estimate``: bounded, then a skewed binary search."""
    env = _environment(backend, ref, block, state)
    if args.gas is None:
        args = replace(args, gas=0)
    header_fee = _header_base_fee(env)
    message = to_message(args, budget.gas_cap(backend.limits), header_fee, header_fee, backend.chain_id)
    try:
        return quantity(Estimator(backend, env, message).estimate())
    except CallTimeout:
        raise _timeout_error(backend) from None


class Estimator:
    """One estimation: every trial runs the same message with another gas limit."""

    def __init__(self, backend: ReplicaBackend, env: CallEnvironment, message: CallMessage) -> None:
        self.backend = backend
        self.env = env
        self.message = message
        self.gas_cap = budget.gas_cap(backend.limits)
        self.deadline = _deadline(backend)

    def trial(self, gas: int) -> tuple[bool, CallResult | None]:
        """(failed, result); a message refused for too little intrinsic gas just fails."""
        try:
            result = _run(self.backend, self.env, self.message.with_gas(gas), self.deadline)
        except CallFailure as failure:
            if failure.message.startswith("intrinsic gas too low"):
                return True, None
            raise ServerError(f"failed with {gas} gas: {failure.message}") from None
        return result.failed, result

    def upper_bound(self) -> int:
        """The block gas limit (or the given gas), capped by the sender's funds and the cap."""
        message = self.message
        high = message.gas if message.gas >= GAS_TX else self.env.header.gas_limit
        fee_cap = message.max_fee_per_gas
        if fee_cap:
            available = _account(self.env, message.sender).balance
            if message.value >= available:
                raise ServerError("insufficient funds for transfer")
            available -= message.value
            blobs = len(message.blob_versioned_hashes or ())
            if blobs and self.env.blob_fee is not None:
                blob_cost = blobs * 131_072 * (message.max_fee_per_blob_gas or 0)
                if blob_cost >= available:
                    raise ServerError("insufficient funds for gas * price + value")
                available -= blob_cost
            high = min(high, available // fee_cap)
        if self.gas_cap and high > self.gas_cap:
            high = self.gas_cap
        if high > TRANSACTION_GAS_LIMIT_CAP and self.env.fork_at_least(OsakaVM):
            high = TRANSACTION_GAS_LIMIT_CAP  # EIP-7825, as geth's estimator
        return high

    def estimate(self) -> int:
        high = self.upper_bound()
        if self._plain_transfer():
            failed, _ = self.trial(GAS_TX)
            if not failed:
                return GAS_TX
        failed, result = self.trial(high)
        if failed:
            if result is not None and not _out_of_gas(result):
                _outcome(result)
            raise ServerError(f"gas required exceeds allowance ({high})")
        assert result is not None
        return self._search(result.gas_used - 1, high, result)

    def _plain_transfer(self) -> bool:
        message = self.message
        if message.data or message.to is None:
            return False
        return _account(self.env, message.to).code_hash == keccak(b"")

    def _search(self, low: int, high: int, first: CallResult) -> int:
        optimistic = (first.gas_used + first.refunded + CALL_STIPEND) * 64 // 63
        if optimistic < high:
            failed, _ = self.trial(optimistic)
            if failed:
                low = optimistic
            else:
                high = optimistic
        while low + 1 < high:
            if (high - low) / high < ESTIMATE_ERROR_RATIO:
                break
            middle = (high + low) // 2
            if middle > low * 2:
                middle = low * 2  # most transactions need little more than they use
            failed, _ = self.trial(middle)
            if failed:
                low = middle
            else:
                high = middle
        return high


def _out_of_gas(result: CallResult) -> bool:
    return result.error_message == "out of gas"


# --- eth_createAccessList -------------------------------------------------------------------


def eth_create_access_list(backend: ReplicaBackend, args: CallArgs, ref: BlockRef | None,
                           state: StateOverride | None) -> JSON:
    """geth's ``AccessList``: rerun with the traced list until it stops changing."""
    env = _environment(backend, ref, None, state)
    header_fee = _header_base_fee(env)
    args = _fee_defaults(backend, env, args)
    if args.nonce is None:
        args = replace(args, nonce=_account(env, args.sender or bytes(20)).nonce)
    sender = args.sender or bytes(20)
    to = args.to if args.to is not None else created_address(sender, args.nonce or 0)
    excluded = frozenset({sender, to}) | env.precompile_addresses
    previous = AccessTracer.seeded(args.access_list, excluded)
    deadline = _deadline(backend)
    while True:
        access_list = previous.access_list()
        message = to_message(args.with_access_list(access_list), budget.gas_cap(backend.limits),
                             header_fee, header_fee, backend.chain_id)
        tracer = AccessTracer.seeded(access_list, excluded)
        try:
            result = _run(backend, env, message, deadline, tracer)
        except CallFailure as failure:
            raise ServerError(f"failed to apply transaction: {data(_legacy_hash(args))} "
                              f"err: {failure.message}") from None
        except CallTimeout:
            raise _timeout_error(backend) from None
        if tracer.entries == previous.entries:
            return _access_list_json(access_list, result)
        previous = tracer


def _access_list_json(access_list: tuple[tuple[bytes, tuple[int, ...]], ...], result: CallResult) -> JSON:
    response: JSON = {"accessList": access_list_json(access_list)}
    if result.failed:
        response["error"] = result.error_message
    response["gasUsed"] = quantity(result.gas_used)
    return response


def _fee_defaults(backend: ReplicaBackend, env: CallEnvironment, args: CallArgs) -> CallArgs:
    """geth's ``setFeeDefaults``: fill fees the way a wallet would, from the oracle."""
    if args.max_fee_per_blob_gas == 0:
        raise ServerError("maxFeePerBlobGas, if specified, must be non-zero")
    if args.blob_hashes is not None and args.max_fee_per_blob_gas is None:
        args = replace(args, max_fee_per_blob_gas=2 * (env.blob_fee or 0))
    if args.gas_price is not None and (args.max_fee_per_gas is not None
                                       or args.max_priority_fee_per_gas is not None):
        raise ServerError("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
    fee_cap, tip_cap = args.max_fee_per_gas, args.max_priority_fee_per_gas
    if args.gas_price is None and fee_cap is not None and tip_cap is not None:
        if fee_cap == 0:
            raise ServerError("maxFeePerGas must be non-zero")
        _check_caps(fee_cap, tip_cap)
        return args
    base_fee = _header_base_fee(env)
    if args.gas_price is not None:
        if args.gas_price == 0 and base_fee is not None:
            raise ServerError("gasPrice must be non-zero after london fork")
        return args
    if base_fee is None:
        if fee_cap is not None or tip_cap is not None:
            raise ServerError("maxFeePerGas and maxPriorityFeePerGas are not valid before London is active")
        return replace(args, gas_price=suggest_tip(backend))
    if tip_cap is None:
        tip_cap = suggest_tip(backend)
    if fee_cap is None:
        fee_cap = tip_cap + 2 * base_fee
    _check_caps(fee_cap, tip_cap)
    return replace(args, max_fee_per_gas=fee_cap, max_priority_fee_per_gas=tip_cap)


def _check_caps(fee_cap: int, tip_cap: int) -> None:
    if fee_cap < tip_cap:
        raise ServerError(f"maxFeePerGas ({fee_cap}) < maxPriorityFeePerGas ({tip_cap})")


def _legacy_hash(args: CallArgs) -> bytes:
    """The hash geth names in a failed eth_createAccessList (the args as a legacy tx)."""
    fields = [args.nonce or 0, args.gas_price or 0, args.gas or 0, args.to or b"",
              args.value or 0, args.payload, 0, 0, 0]
    return keccak(rlp.encode(fields))


CALL_ARGS = p.required(call_args)
BLOCK_REF = p.optional(block_ref)
STATE = p.optional(state_override)
BLOCK = p.optional(block_overrides)

METHODS: MethodTable = {
    "eth_call": Method(eth_call, (CALL_ARGS, BLOCK_REF, STATE, BLOCK), offload=True),
    "eth_estimateGas": Method(eth_estimate_gas, (CALL_ARGS, BLOCK_REF, STATE, BLOCK), offload=True),
    "eth_createAccessList": Method(eth_create_access_list, (CALL_ARGS, BLOCK_REF, STATE), offload=True),
}
