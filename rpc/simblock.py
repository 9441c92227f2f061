"""Executing one eth_simulateV1 block: geth's ``simulator.processBlock`` on py-evm.

A simulated block runs on the overlay its chain shares, from its parent's post-state:
state overrides first, then the fork's system updates (EIP-4788 beacon root, EIP-2935
parent hash), each call as a transaction settled in the block (nonce, fees, refunds,
self-destructs), then withdrawals and the EIP-7002/7251 queue calls; the header is
assembled from what happened (state, transaction and receipt roots, bloom, gas,
blob gas, requests hash), so the block's hash is the one geth reports.

Calls are unsigned: each becomes geth's ``ToTransaction`` with a zero signature,
which fixes its hash and the transactions root.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Sequence

from eth.abc import BlockAPI, BlockHeaderAPI, SignedTransactionAPI, StateAPI, VirtualMachineAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_UNCLE_HASH, SYSTEM_ADDRESS, SYSTEM_MESSAGE_GAS
from eth.db.trie import make_trie_root_and_nodes
from eth.vm.forks import CancunVM, LondonVM, PragueVM, ShanghaiVM
from eth.vm.forks.cancun.constants import BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CONTRACT_CODE, HISTORY_BUFFER_LENGTH
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth.vm.forks.prague.constants import (
    CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    CONSOLIDATION_REQUEST_TYPE,
    HISTORY_SERVE_WINDOW,
    HISTORY_STORAGE_ADDRESS,
    HISTORY_STORAGE_CONTRACT_CODE,
    WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
    WITHDRAWAL_REQUEST_TYPE,
)
from eth.vm.forks.shanghai.withdrawals import Withdrawal
from eth.vm.message import Message
from eth_typing import Address

from chain.osaka import excess_blob_gas_after
from rpc.backend import ReplicaBackend
from rpc.callargs import BlockOverrides, CallArgs, CallMessage, StateOverride, to_message
from rpc.evm import (
    GAS_PER_BLOB,
    CallEnvironment,
    CallFailure,
    CallResult,
    checksum,
    execute,
    floor_data_gas,
    new_state,
    prepare,
)
from rpc.simstate import simulation_state_class
from storage.overlay import OverlayDB

GWEI = 10**9
MAX_NONCE = 2**64 - 1


@dataclass(frozen=True)
class SimBlockOverrides:
    """geth's ``override.BlockOverrides`` as eth_simulateV1 reads it (withdrawals and beacon root too)."""

    fields: BlockOverrides = field(default_factory=BlockOverrides)
    beacon_root: bytes | None = None
    withdrawals: tuple[Withdrawal, ...] = ()


@dataclass(frozen=True)
class SimBlock:
    """One entry of ``blockStateCalls`` after geth's ``sanitizeChain``: number and time are set."""

    number: int
    time: int
    overrides: SimBlockOverrides
    state: StateOverride | None = None
    calls: tuple[CallArgs, ...] = ()


@dataclass(frozen=True)
class CallOutcome:
    """One call's ``simCallResult``: the run, its logs (ERC-7528 transfers included), gas at peak."""

    result: CallResult
    logs: tuple[tuple[int, bytes, tuple[int, ...], bytes], ...]
    """(index in the block, address, topics, data)."""
    max_used_gas: int


@dataclass
class SimulatedBlock:
    """A finished block: py-evm's block (header, bodies), its calls' outcomes and senders."""

    block: BlockAPI
    vm_class: type[VirtualMachineAPI]
    outcomes: list[CallOutcome]
    senders: list[bytes]


class SimFailure(Exception):
    """A call geth refuses before execution, with the message it answers (``err: ... (supplied gas N)``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SimTimeout(Exception):
    """The whole simulation ran past the call time limit."""


class BlockGasLimitReached(Exception):
    """A call's gas does not fit in what is left of its block's gas limit."""


@dataclass
class Simulation:
    """State shared by the chained blocks of one request: overlay, gas pool, mode, deadline."""

    backend: ReplicaBackend
    base: BlockHeaderAPI
    validate: bool
    trace_transfers: bool
    deadline: float
    gas_pool: int
    db: OverlayDB
    headers: list[BlockHeaderAPI] = field(default_factory=list)
    """The simulated blocks so far, oldest first (BLOCKHASH reads them)."""

    @property
    def parent(self) -> BlockHeaderAPI:
        return self.headers[-1] if self.headers else self.base

    def previous_hashes(self) -> Iterator[bytes]:
        """What BLOCKHASH sees: the simulated blocks newest first, then the base chain."""
        simulated = [header.hash for header in reversed(self.headers)] + [self.base.hash]
        return itertools.islice(itertools.chain(simulated, self.backend.previous_hashes(self.base)), 256)


def process_block(sim: Simulation, block: SimBlock) -> SimulatedBlock:
    """Execute one simulated block on top of ``sim.parent`` and assemble it."""
    parent = sim.parent
    vm_class = sim.backend.chain.get_vm_class_at(block.number, block.time)
    header = _preliminary_header(sim, vm_class, block, parent)
    # geth runs every simulated block with its base block's precompiles (``activePrecompiles(sim.base)``),
    # even one whose timestamp reaches a fork that adds or reprices some.
    env = prepare(sim.backend, header, None, block.state, db=sim.db, precompiles_of=sim.backend.vm_class(sim.base))
    env.context_fields["prev_hashes"] = list(sim.previous_hashes())
    if block.overrides.fields.blob_base_fee is not None:
        env.blob_fee = block.overrides.fields.blob_base_fee
    env.state_class = simulation_state_class(env.state_class)
    state = new_state(env, env.db)
    state.call_deadline = sim.deadline  # type: ignore[attr-defined]
    state.no_base_fee = not sim.validate  # type: ignore[attr-defined]
    state.trace_transfers = sim.trace_transfers  # type: ignore[attr-defined]
    state.next_log_index = 0  # type: ignore[attr-defined]
    _system_updates_before(vm_class, state, header)
    transactions, receipts, outcomes, senders = [], [], [], []
    gas_used = blob_gas_used = 0
    for index, args in enumerate(block.calls):
        args = _call_defaults(sim, state, header, args, gas_used)
        message = to_message(args, sim.gas_pool, env.base_fee, env.base_fee, sim.backend.chain_id)
        outcome, computation = _run_call(sim, env, state, message)
        sim.gas_pool -= outcome.result.gas_used
        gas_used += outcome.result.gas_used
        transaction = to_transaction(vm_class, message, legacy=args.gas_price is not None
                                     and args.max_fee_per_gas is None)
        blob_gas_used += GAS_PER_BLOB * len(message.blob_versioned_hashes or ())
        transactions.append(transaction)
        receipts.append(_receipt(transaction, computation, state, gas_used))
        outcomes.append(outcome)
        senders.append(message.sender)
    requests = _system_updates_after(vm_class, state)
    _finalize(vm_class, state, header, block.overrides.withdrawals)
    state.persist()
    assembled = _assemble(vm_class, header, state.state_root, transactions, receipts, block.overrides.withdrawals,
                          gas_used, blob_gas_used, requests)
    sim.headers.append(assembled.header)
    return SimulatedBlock(assembled, vm_class, outcomes, senders)


# --- the header ------------------------------------------------------------------------------


def _preliminary_header(sim: Simulation, vm_class: type[VirtualMachineAPI], block: SimBlock,
                        parent: BlockHeaderAPI) -> BlockHeaderAPI:
    """geth's ``makeHeaders`` + the parent-dependent fields of ``processBlock``.

    Coinbase, difficulty and gas limit carry over from the previous block unless overridden.
    """
    given = block.overrides.fields
    fields: dict[str, Any] = {
        "parent_hash": parent.hash,
        "uncles_hash": EMPTY_UNCLE_HASH,
        "coinbase": given.fee_recipient or parent.coinbase,
        "state_root": parent.state_root,
        "difficulty": given.difficulty if given.difficulty is not None else parent.difficulty,
        "block_number": block.number,
        "gas_limit": given.gas_limit if given.gas_limit is not None else parent.gas_limit,
        "timestamp": block.time,
        "mix_hash": given.prev_randao or bytes(32),
        "extra_data": b"",
        "nonce": bytes(8),
    }
    if issubclass(vm_class, LondonVM):
        fields["base_fee_per_gas"] = _base_fee(sim, given, parent)
    if issubclass(vm_class, ShanghaiVM):
        fields["withdrawals_root"] = BLANK_ROOT_HASH
    if issubclass(vm_class, CancunVM):
        fields["blob_gas_used"] = 0
        # geth: zero after a pre-Cancun parent, else the parent's excess carried on under
        # this block's blob parameters (``CalcExcessBlobGas(config, parent, header.Time)``).
        parent_vm = sim.backend.chain.get_vm_class_at(parent.block_number, parent.timestamp)
        fields["excess_blob_gas"] = (excess_blob_gas_after(vm_class, parent)
                                     if issubclass(parent_vm, CancunVM) else 0)
        fields["parent_beacon_block_root"] = block.overrides.beacon_root or bytes(32)
    if issubclass(vm_class, PragueVM):
        fields["requests_hash"] = hashlib.sha256().digest()
    header_class = vm_class.get_block_class()._meta.sedes[0]  # type: ignore[attr-defined]
    return header_class(**fields)  # type: ignore[no-any-return]


def _base_fee(sim: Simulation, given: BlockOverrides, parent: BlockHeaderAPI) -> int:
    """The override; else the parent's successor fee with validation, zero without (geth)."""
    if given.base_fee_per_gas is not None:
        return given.base_fee_per_gas
    if not sim.validate:
        return 0
    return calculate_expected_base_fee_per_gas(parent)


# --- calls -----------------------------------------------------------------------------------


def _call_defaults(sim: Simulation, state: StateAPI, header: BlockHeaderAPI, args: CallArgs,
                   gas_used: int) -> CallArgs:
    """geth's ``sanitizeCall``: the sender's nonce, and the block's remaining gas, by default."""
    if args.nonce is None:
        args = replace(args, nonce=state.get_nonce(Address(args.sender or bytes(20))))
    if args.gas is None:
        args = replace(args, gas=header.gas_limit - gas_used)
    if gas_used + (args.gas or 0) > header.gas_limit:
        raise BlockGasLimitReached(f"block gas limit reached: {gas_used} >= {header.gas_limit}")
    return args


def _validation_checks(env: CallEnvironment, state: StateAPI, message: CallMessage) -> None:
    """What geth checks only with ``validation``: the nonce, and fee caps even when zero."""
    sender = Address(message.sender)
    nonce = state.get_nonce(sender)
    address = checksum(message.sender)
    if nonce == MAX_NONCE:
        raise CallFailure(f"nonce has max value: address {address}, nonce: {nonce}")
    if message.nonce > nonce:
        raise CallFailure(f"nonce too high: address {address}, tx: {message.nonce} state: {nonce}")
    if message.nonce < nonce:
        raise CallFailure(f"nonce too low: address {address}, tx: {message.nonce} state: {nonce}")
    base_fee = env.base_fee
    if base_fee is not None and message.max_fee_per_gas < base_fee:
        raise CallFailure(f"max fee per gas less than block base fee: address {address}, "
                          f"maxFeePerGas: {message.max_fee_per_gas}, baseFee: {base_fee}")


def _run_call(sim: Simulation, env: CallEnvironment, state: StateAPI, message: CallMessage) -> tuple[CallOutcome, Any]:
    """Run one call settled into the block's state, with geth's refusal texts."""
    if time.monotonic() > sim.deadline:
        raise SimTimeout()
    state.transfer_log_counters = set()  # type: ignore[attr-defined]
    state.log_indexes = {}  # type: ignore[attr-defined]
    if env.fork_at_least(CancunVM):
        state.clear_transient_storage()
    sender = Address(message.sender)
    wraps = not sim.validate and state.get_nonce(sender) == MAX_NONCE
    if message.gas > sim.gas_pool:
        raise SimFailure(f"err: gas limit reached (supplied gas {message.gas})")
    try:
        if sim.validate:
            _validation_checks(env, state, message)
        if wraps:
            state.set_nonce(sender, MAX_NONCE - 1)  # py-evm refuses the increment past 2**64 - 1
        result, computation = execute(env, state, message, finalize=True)
    except CallFailure as failure:
        raise SimFailure(f"err: {failure.message} (supplied gas {message.gas})") from None
    if wraps:
        state.set_nonce(sender, 0)  # geth's uint64 nonce wraps around when nothing checks it
    state.lock_changes()
    numbered = state.log_indexes  # type: ignore[attr-defined]
    logs = tuple((numbered[counter], *entry) for counter, *entry in computation.get_raw_log_entries())
    peak = message.gas - computation.get_gas_remaining()
    if env.fork_at_least(PragueVM):
        peak = max(peak, floor_data_gas(message.data))
    return CallOutcome(result, logs, peak), computation


def _receipt(transaction: SignedTransactionAPI, computation: Any, state: StateAPI, cumulative_gas: int) -> Any:
    """The receipt as the block holds it: real logs only (no synthetic transfers)."""
    synthetic = state.transfer_log_counters  # type: ignore[attr-defined]
    logs = tuple(entry[1:] for entry in computation.get_raw_log_entries() if entry[0] not in synthetic)
    status = b"" if computation.is_error else b"\x01"
    return transaction.make_receipt(status, cumulative_gas, logs)


def to_transaction(vm_class: type[VirtualMachineAPI], message: CallMessage, legacy: bool) -> SignedTransactionAPI:
    """geth's ``TransactionArgs.ToTransaction(DynamicFeeTxType)`` with a zero signature.

    ``legacy``: the call gave ``gasPrice`` and no ``maxFeePerGas`` (geth then builds a legacy one).
    py-evm's builders return their own fork's typed class, so the result is re-decoded
    by the block's fork to sit in its block.
    """
    builder = vm_class.get_transaction_builder()
    to = Address(message.to if message.to is not None else b"")
    if legacy or not issubclass(vm_class, LondonVM):
        return builder.new_transaction(message.nonce, message.gas_price, message.gas, to, message.value,
                                       message.data, 0, 0, 0)
    common = (message.chain_id, message.nonce, message.max_priority_fee_per_gas, message.max_fee_per_gas,
              message.gas, to, message.value, message.data, message.access_list or ())
    if message.authorization_list is not None:
        typed = builder.new_set_code_transaction(*common, message.authorization_list, 0, 0, 0)  # type: ignore[attr-defined]
    elif message.blob_versioned_hashes is not None:
        typed = builder.new_blob_transaction(*common, message.max_fee_per_blob_gas or 0,  # type: ignore[attr-defined]
                                             message.blob_versioned_hashes, 0, 0, 0)
    else:
        typed = builder.new_dynamic_fee_transaction(*common, 0, 0, 0)  # type: ignore[attr-defined]
    return builder.decode(typed.encode())


# --- system updates ---------------------------------------------------------------------


def _system_updates_before(vm_class: type[VirtualMachineAPI], state: StateAPI, header: BlockHeaderAPI) -> None:
    """EIP-4788's beacon root and EIP-2935's parent hash, as py-evm's ``block_preprocessing`` writes them."""
    if issubclass(vm_class, CancunVM) and state.get_code(BEACON_ROOTS_ADDRESS) == BEACON_ROOTS_CONTRACT_CODE:
        slot = header.timestamp % HISTORY_BUFFER_LENGTH
        state.set_storage(BEACON_ROOTS_ADDRESS, slot, header.timestamp)
        state.set_storage(BEACON_ROOTS_ADDRESS, slot + HISTORY_BUFFER_LENGTH,
                          int.from_bytes(header.parent_beacon_block_root or bytes(32), "big"))
    if issubclass(vm_class, PragueVM) and state.get_code(HISTORY_STORAGE_ADDRESS) == HISTORY_STORAGE_CONTRACT_CODE:
        state.set_storage(HISTORY_STORAGE_ADDRESS, (header.block_number - 1) % HISTORY_SERVE_WINDOW,
                          int.from_bytes(header.parent_hash, "big"))
    state.lock_changes()


def _system_updates_after(vm_class: type[VirtualMachineAPI], state: StateAPI) -> list[bytes] | None:
    """EIP-7685 requests (Prague): the withdrawal and consolidation queues' system calls.

    Deposits (EIP-6110) come from the deposit contract's logs; a simulation has none
    of the chain's configured deposit contract, so they are left out.
    """
    if not issubclass(vm_class, PragueVM):
        return None
    requests: list[bytes] = []
    for address, kind in ((WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, WITHDRAWAL_REQUEST_TYPE),
                          (CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_TYPE)):
        code = state.get_code(address)
        if not code:
            continue
        message = Message(gas=SYSTEM_MESSAGE_GAS, to=address, sender=SYSTEM_ADDRESS, value=0, data=b"",
                          code=code, code_address=address)
        context = state.get_transaction_context_class()(gas_price=0, origin=SYSTEM_ADDRESS)
        computation = state.computation_class.apply_computation(state, message, context)
        if computation.output:
            requests.append(kind + computation.output)
    state.lock_changes()
    return requests


def _finalize(vm_class: type[VirtualMachineAPI], state: StateAPI, header: BlockHeaderAPI,
              withdrawals: Sequence[Withdrawal]) -> None:
    """geth's engine ``Finalize``: withdrawals credited; a proof-of-work block (non-zero
    difficulty) pays its miner the fork's block reward."""
    for withdrawal in withdrawals:
        state.delta_balance(Address(withdrawal.address), withdrawal.amount * GWEI)
    if header.difficulty:
        state.delta_balance(header.coinbase, vm_class.get_block_reward())
    state.lock_changes()


def _requests_hash(requests: Sequence[bytes]) -> bytes:
    digest = hashlib.sha256()
    for request in requests:
        if len(request) > 1:
            digest.update(hashlib.sha256(request).digest())
    return digest.digest()


# --- assembly -----------------------------------------------------------------------------


def _assemble(vm_class: type[VirtualMachineAPI], header: BlockHeaderAPI, state_root: bytes,
              transactions: list[SignedTransactionAPI], receipts: list[Any],
              withdrawals: Sequence[Withdrawal], gas_used: int, blob_gas_used: int,
              requests: list[bytes] | None) -> BlockAPI:
    """The finished block: roots, bloom and gas filled in (geth's ``FinalizeAndAssemble``)."""
    bloom = 0
    for receipt in receipts:
        bloom |= receipt.bloom
    changes: dict[str, Any] = {
        "state_root": state_root,
        "transaction_root": make_trie_root_and_nodes(transactions)[0],  # type: ignore[arg-type]
        "receipt_root": make_trie_root_and_nodes(receipts)[0],  # type: ignore[arg-type]
        "bloom": bloom,
        "gas_used": gas_used,
    }
    block_class = vm_class.get_block_class()
    if issubclass(vm_class, ShanghaiVM):
        changes["withdrawals_root"] = make_trie_root_and_nodes(list(withdrawals))[0]  # type: ignore[arg-type]
    if issubclass(vm_class, CancunVM):
        changes["blob_gas_used"] = blob_gas_used
    if requests is not None:
        changes["requests_hash"] = _requests_hash(requests)
    final = header.copy(**changes)
    if issubclass(vm_class, ShanghaiVM):
        return block_class(final, transactions, [], list(withdrawals))  # type: ignore[call-arg]
    return block_class(final, transactions, [])

