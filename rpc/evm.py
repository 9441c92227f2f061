"""Running a call message on py-evm the way geth's eth_call does.

The call executes in the context of the requested block's own header (NUMBER,
TIMESTAMP, BASEFEE... are that block's, and the state is its post-state), on an
in-memory overlay of the read-only database. geth's pre-checks and their messages
come first (fees, blobs, authorizations, funds, intrinsic and floor gas, initcode
size); then py-evm's executor builds the message and runs it, without its own
transaction validation (no nonce or EOA checks for calls) and without finalisation
(nothing is paid or persisted). Gas used is counted as geth counts it: after the
refund and the EIP-7623 floor.

A run's state is thrown away, so it keeps its accounts in a ``CallAccountDB``
(``rpc.callstate``) rather than py-evm's ``AccountDB``: only state overrides and
eth_simulateV1, which need state roots, build py-evm's.

Long executions are cut by a deadline checked on every jump and call, and the same
opcode hook records accessed addresses and slots for eth_createAccessList.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from eth._utils.address import generate_contract_address
from eth.abc import BlockHeaderAPI, ComputationAPI, StateAPI, VirtualMachineAPI
from eth.constants import DEFAULT_SPOOF_R, DEFAULT_SPOOF_S, DEFAULT_SPOOF_Y_PARITY
from eth.exceptions import Revert
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks import (
    CancunVM,
    HomesteadVM,
    IstanbulVM,
    LondonVM,
    PragueVM,
    ShanghaiVM,
)
from eth_typing import Address
from eth_utils import to_checksum_address

from rpc.backend import ReplicaBackend, blob_base_fee
from rpc.callcache import SharedReads, share_reads
from rpc.callargs import AccountOverride, BlockOverrides, CallMessage, StateOverride
from rpc.errors import ServerError, vm_error_message
from rpc.evmhooks import AccessTracer, CallTimeout, call_classes, fork_precompiles, throwaway_class
from storage.overlay import OverlayDB

GAS_TX = 21_000
GAS_TX_CREATE = 53_000
GAS_PER_BLOB = 131_072
MAX_INITCODE_SIZE = 49_152


class CallFailure(ServerError):
    """A message geth refuses before execution (its ``core`` error text)."""


def checksum(address: bytes) -> str:
    """geth prints addresses in errors with the EIP-55 checksum."""
    return to_checksum_address(address)


# --- one request's environment ----------------------------------------------------------


@dataclass
class CallEnvironment:
    """What every run of one request shares: block context, fork, overridden state."""

    vm_class: type[VirtualMachineAPI]
    header: BlockHeaderAPI
    context_fields: dict[str, Any]
    state_class: type[StateAPI]
    """The fork's call state on py-evm's ``AccountDB`` (overrides, eth_simulateV1)."""
    call_class: type[StateAPI]
    """The same on a ``CallAccountDB``: what ``run`` executes on."""
    db: OverlayDB
    state_root: bytes
    blob_fee: int | None
    precompiles: frozenset[tuple[bytes, Any]]
    """The call's precompiles (address, implementation), state overrides applied."""
    reads: SharedReads

    @property
    def base_fee(self) -> int | None:
        return self.context_fields["base_fee_per_gas"]

    @property
    def precompile_addresses(self) -> frozenset[bytes]:
        return frozenset(address for address, _ in self.precompiles)

    def fork_at_least(self, vm: type[VirtualMachineAPI]) -> bool:
        return issubclass(self.vm_class, vm)


def prepare(backend: ReplicaBackend, header: BlockHeaderAPI, block: BlockOverrides | None,
            state: StateOverride | None, db: OverlayDB | None = None,
            precompiles_of: type[VirtualMachineAPI] | None = None) -> CallEnvironment:
    """The block context of ``header`` (with overrides) and its post-state (with overrides).

    ``db`` is the overlay to run on (default: a new one over the backend's database):
    eth_simulateV1 passes the one its chained blocks share, debug_traceCall the one
    that replayed the block's transactions before its ``txIndex``. ``precompiles_of`` is
    the VM whose precompiles run (default: the block's own).
    """
    block = block or BlockOverrides()
    number = block.number if block.number is not None else header.block_number
    time = block.time if block.time is not None else header.timestamp
    # geth's rules come from the (overridden) block context: a later time may reach a later fork.
    vm_class = backend.chain.get_vm_class_at(number, time)
    precompiles = fork_precompiles(precompiles_of or vm_class)
    if state:
        moved = dict(precompiles)
        _check_overrides(state, moved)
        _move_precompiles(state, moved)
        precompiles = frozenset(moved.items())
    state_class = call_classes(vm_class, precompiles)
    env = CallEnvironment(
        vm_class=vm_class,
        header=header,
        context_fields=_block_context(backend, header, block, vm_class, number),
        state_class=state_class,
        call_class=throwaway_class(state_class),
        db=db if db is not None else OverlayDB(backend.db),
        state_root=header.state_root,
        blob_fee=_blob_fee(backend, header, block, vm_class),
        precompiles=precompiles,
        reads=backend.call_reads,
    )
    if state:
        env.state_root = _apply_overrides(env, state)
    return env


def _block_context(backend: ReplicaBackend, header: BlockHeaderAPI, block: BlockOverrides,
                   vm_class: type[VirtualMachineAPI], number: int) -> dict[str, Any]:
    """``ExecutionContext`` arguments: the header's own values unless overridden."""
    return {
        "coinbase": block.fee_recipient or vm_class.consensus_class.get_fee_recipient(header),
        "timestamp": block.time if block.time is not None else header.timestamp,
        "block_number": number,
        "difficulty": block.difficulty if block.difficulty is not None else header.difficulty,
        "mix_hash": block.prev_randao or header.mix_hash,
        "gas_limit": block.gas_limit if block.gas_limit is not None else header.gas_limit,
        "prev_hashes": backend.previous_hashes(header),
        "chain_id": backend.chain_id,
        "base_fee_per_gas": (block.base_fee_per_gas if block.base_fee_per_gas is not None
                             else getattr(header, "base_fee_per_gas", None)),
        "excess_blob_gas": getattr(header, "excess_blob_gas", None),
    }


def _blob_fee(backend: ReplicaBackend, header: BlockHeaderAPI, block: BlockOverrides,
              vm_class: type[VirtualMachineAPI]) -> int | None:
    """The override, else the header's blob base fee under the header's own fork's parameters:
    geth's ``NewEVMBlockContext`` prices it before the number and time overrides apply."""
    if block.blob_base_fee is not None:
        return block.blob_base_fee
    excess = getattr(header, "excess_blob_gas", None)
    if excess is None or not issubclass(vm_class, CancunVM):
        return None
    if block.number is not None or block.time is not None:
        vm_class = backend.chain.get_vm_class_at(header.block_number, header.timestamp)
    return blob_base_fee(vm_class, excess)


def _check_overrides(state: StateOverride, precompiles: dict[bytes, Any]) -> None:
    """geth's ``StateOverride.Apply`` refusals, with its messages."""
    moved_to: set[bytes] = set()
    for address, account in state.items():
        if address in moved_to:
            raise ServerError(f"account {checksum(address)} has already been overridden by a precompile")
        if account.move_precompile_to is not None:
            moved_to.add(account.move_precompile_to)
            if address not in precompiles:
                raise ServerError(f"account {checksum(address)} is not a precompile")
            if account.move_precompile_to in state:
                raise ServerError(f"account {checksum(account.move_precompile_to)} is already overridden")
        if account.state is not None and account.state_diff is not None:
            raise ServerError(f"account {checksum(address)} has both 'state' and 'stateDiff'")


def _move_precompiles(state: StateOverride, precompiles: dict[bytes, Any]) -> None:
    """geth: an overridden precompile stops being one; a moved one lives on elsewhere."""
    originals = dict(precompiles)
    for address, account in state.items():
        if account.move_precompile_to is not None:
            precompiles[account.move_precompile_to] = originals[address]
        precompiles.pop(address, None)


def _apply_overrides(env: CallEnvironment, overrides: StateOverride) -> bytes:
    """Write the overrides into the overlay as a new state; returns its root."""
    state = new_state(env, env.db)
    for address, account in overrides.items():
        _apply_account(state, address, account)
    state.persist()
    return state.state_root


def _apply_account(state: StateAPI, raw_address: bytes, account: AccountOverride) -> None:
    address = Address(raw_address)
    if account.nonce is not None:
        state.set_nonce(address, account.nonce)
    if account.code is not None:
        state.set_code(address, account.code)
    if account.balance is not None:
        state.set_balance(address, account.balance)
    if account.state is not None:
        state.delete_storage(address)
        state.touch_account(address)
    for slot, value in (account.state or account.state_diff or {}).items():
        state.set_storage(address, int.from_bytes(slot, "big"), int.from_bytes(value, "big"))


def new_state(env: CallEnvironment, db: Any, base_fee: int | None = None,
              blob_fee: int | None = None) -> StateAPI:
    """A fresh state at the environment's (overridden) root on py-evm's ``AccountDB`` over ``db``."""
    state = env.state_class(db, _context(env, base_fee), env.state_root)
    share_reads(state, env.reads)
    state.blob_fee_override = blob_fee if blob_fee is not None else env.blob_fee  # type: ignore[attr-defined]
    return state


def call_state(env: CallEnvironment, base_fee: int | None = None, blob_fee: int | None = None) -> StateAPI:
    """A fresh throwaway state at the environment's (overridden) root: it writes nowhere."""
    state = env.call_class(env.db, _context(env, base_fee), env.state_root, env.reads)  # type: ignore[call-arg]
    state.blob_fee_override = blob_fee if blob_fee is not None else env.blob_fee  # type: ignore[attr-defined]
    return state


def _context(env: CallEnvironment, base_fee: int | None) -> ExecutionContext:
    fields = env.context_fields
    if base_fee is not None:
        fields = {**fields, "base_fee_per_gas": base_fee}
    return ExecutionContext(**fields)


# --- one run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallResult:
    """geth's ``ExecutionResult``."""

    output: bytes
    gas_used: int
    refunded: int
    error: Exception | None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def revert_data(self) -> bytes:
        return self.output if isinstance(self.error, Revert) else b""

    @property
    def error_message(self) -> str:
        if isinstance(self.error, Revert):
            return "execution reverted"
        return vm_error_message(self.error) if self.error is not None else ""


def intrinsic_gas(env: CallEnvironment, message: CallMessage) -> tuple[int, int]:
    """geth's ``IntrinsicGas`` and the part py-evm charges itself (initcode words)."""
    create = message.is_create
    gas = GAS_TX_CREATE if create and env.fork_at_least(HomesteadVM) else GAS_TX
    zeros = message.data.count(0)
    non_zero_cost = 16 if env.fork_at_least(IstanbulVM) else 68
    gas += zeros * 4 + (len(message.data) - zeros) * non_zero_cost
    initcode = 0
    if create and env.fork_at_least(ShanghaiVM):
        initcode = 2 * ((len(message.data) + 31) // 32)
    if message.access_list is not None:
        gas += 2400 * len(message.access_list) + 1900 * sum(len(s) for _, s in message.access_list)
    if message.authorization_list is not None:
        gas += 25_000 * len(message.authorization_list)
    return gas + initcode, initcode


def floor_data_gas(data: bytes) -> int:
    """EIP-7623's minimum gas for calldata (Prague)."""
    zeros = data.count(0)
    return GAS_TX + 10 * (zeros + 4 * (len(data) - zeros))


def run(env: CallEnvironment, message: CallMessage, deadline: float,
        tracer: AccessTracer | None = None, pause: Callable[[], None] | None = None) -> CallResult:
    """Execute ``message`` once on a fresh copy of the environment's state.

    Raises ``CallFailure`` with geth's text when geth would refuse the message before
    executing it, and ``CallTimeout`` past ``deadline`` (a ``time.monotonic`` value).
    ``pause`` is called every few milliseconds of execution (to yield to the apply agent).
    """
    zero_fee = message.gas_price == 0
    blob_zero = message.max_fee_per_blob_gas == 0
    state = call_state(env, base_fee=0 if zero_fee and env.base_fee is not None else None,
                       blob_fee=0 if blob_zero else None)
    state.call_deadline = deadline  # type: ignore[attr-defined]
    state.call_tracer = tracer  # type: ignore[attr-defined]
    state.call_pause = pause  # type: ignore[attr-defined]
    return execute(env, state, message)[0]


def execute(env: CallEnvironment, state: StateAPI, message: CallMessage,
            finalize: bool = False) -> tuple[CallResult, ComputationAPI]:
    """Run ``message`` on ``state`` after geth's pre-checks: the result and py-evm's computation.

    With ``finalize`` the transaction is settled as in a block (refund, fee to the
    coinbase, self-destructs), so that the next message sees it: eth_simulateV1.
    """
    full_intrinsic, charged_later = intrinsic_gas(env, message)
    _pre_check(env, state, message, full_intrinsic)
    transaction = _ExecutorView(message, full_intrinsic - charged_later)
    executor = state.get_transaction_executor()
    evm_message = executor.build_evm_message(transaction)  # type: ignore[arg-type]
    computation = executor.build_computation(evm_message, transaction)  # type: ignore[arg-type]
    used = message.gas - computation.get_gas_remaining()
    refund = executor.calculate_gas_refund(computation, used)  # type: ignore[attr-defined]
    floor = executor.calc_data_floor_gas(transaction, used, refund)  # type: ignore[attr-defined]
    if finalize:
        executor.finalize_computation(transaction, computation)  # type: ignore[arg-type]
    result = CallResult(computation.output, used - refund + floor, refund, computation.error
                        if computation.is_error else None)
    return result, computation


class _ExecutorView:
    """The message as py-evm's executor reads a transaction (create: empty ``to``).

    The signature fields are py-evm's spoof defaults: older forks' executors log them.
    """

    y_parity = DEFAULT_SPOOF_Y_PARITY
    v = DEFAULT_SPOOF_Y_PARITY + 27
    r = DEFAULT_SPOOF_R
    s = DEFAULT_SPOOF_S

    def __init__(self, message: CallMessage, intrinsic: int) -> None:
        self._message = message
        self.intrinsic_gas = intrinsic
        self.to = message.to if message.to is not None else b""
        self.access_list = message.access_list or ()
        self.blob_versioned_hashes = message.blob_versioned_hashes or ()
        self.authorization_list = message.authorization_list or ()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._message, name)

    def __repr__(self) -> str:
        return f"CallMessage(from={self._message.sender.hex()})"


def _pre_check(env: CallEnvironment, state: StateAPI, message: CallMessage, intrinsic: int) -> None:
    """geth's ``preCheck``, ``buyGas`` and the checks of ``execute`` before the EVM runs."""
    sender = _Checksummed(message.sender)
    _check_fees(env, state, message, sender)
    _check_blobs(env, state, message, sender)
    if message.authorization_list is not None:
        if message.to is None:
            raise CallFailure(f"EIP-7702 transaction cannot be used to create contract (sender {sender})")
        if not message.authorization_list:
            raise CallFailure(f"EIP-7702 transaction with empty auth list (sender {sender})")
    blob_gas = GAS_PER_BLOB * len(message.blob_versioned_hashes or ()) if env.fork_at_least(CancunVM) else 0
    balance = state.get_balance(Address(message.sender))
    want = message.gas * message.max_fee_per_gas + message.value + blob_gas * (message.max_fee_per_blob_gas or 0)
    if balance < want:
        raise CallFailure(f"insufficient funds for gas * price + value: address {sender} have {balance} want {want}")
    if message.gas < intrinsic:
        raise CallFailure(f"intrinsic gas too low: have {message.gas}, want {intrinsic}")
    if env.fork_at_least(PragueVM) and message.gas < floor_data_gas(message.data):
        raise CallFailure(f"insufficient gas for floor data gas cost: have {message.gas}, "
                          f"want {floor_data_gas(message.data)}")
    paid = message.gas * message.gas_price + (blob_gas * state.blob_base_fee if blob_gas else 0)
    if message.value and balance - paid < message.value:
        raise CallFailure(f"insufficient funds for transfer: address {sender}")
    if message.is_create and env.fork_at_least(ShanghaiVM) and len(message.data) > MAX_INITCODE_SIZE:
        raise CallFailure(f"max initcode size exceeded: code size {len(message.data)} limit {MAX_INITCODE_SIZE}")


class _Checksummed:
    """An address printed with its EIP-55 checksum, computed only when a message is (a keccak per call saved)."""

    def __init__(self, address: bytes) -> None:
        self.address = address

    def __str__(self) -> str:
        return checksum(self.address)


def _check_fees(env: CallEnvironment, state: StateAPI, message: CallMessage, sender: _Checksummed) -> None:
    if not env.fork_at_least(LondonVM):
        return
    if message.max_fee_per_gas == 0 and message.max_priority_fee_per_gas == 0:
        return  # geth's NoBaseFee: an all-zero fee call skips the fee checks
    if message.max_fee_per_gas < message.max_priority_fee_per_gas:
        raise CallFailure(
            f"max priority fee per gas higher than max fee per gas: address {sender}, "
            f"maxPriorityFeePerGas: {message.max_priority_fee_per_gas}, maxFeePerGas: {message.max_fee_per_gas}")
    base_fee = state.execution_context.base_fee_per_gas or 0
    if message.max_fee_per_gas < base_fee:
        raise CallFailure(
            f"max fee per gas less than block base fee: address {sender}, "
            f"maxFeePerGas: {message.max_fee_per_gas}, baseFee: {base_fee}")


def _check_blobs(env: CallEnvironment, state: StateAPI, message: CallMessage, sender: _Checksummed) -> None:
    hashes = message.blob_versioned_hashes
    if hashes is not None:
        if message.to is None:
            raise CallFailure("blob transaction of type create")
        if not hashes:
            raise CallFailure("blob transaction missing blob hashes")
        for index, blob_hash in enumerate(hashes):
            if blob_hash[:1] != b"\x01":
                raise CallFailure(f"blob {index} has invalid hash version")
    if hashes and env.fork_at_least(CancunVM) and message.max_fee_per_blob_gas:
        fee = state.blob_base_fee
        if message.max_fee_per_blob_gas < fee:
            raise CallFailure(f"max fee per blob gas less than block blob gas fee: address {sender} "
                              f"blobGasFeeCap: {message.max_fee_per_blob_gas}, blobBaseFee: {fee}")


def created_address(sender: bytes, nonce: int) -> bytes:
    """Where a create message deploys (the access list tracer excludes it)."""
    return generate_contract_address(Address(sender), nonce)


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration`` text for the timeouts geth reports ("5s", "500ms")."""
    if seconds >= 1:
        text = f"{seconds:.9f}".rstrip("0").rstrip(".")
        return f"{text}s"
    millis = seconds * 1000
    text = f"{millis:.6f}".rstrip("0").rstrip(".")
    return f"{text}ms"


__all__ = [
    "AccessTracer",
    "CallEnvironment",
    "CallFailure",
    "CallResult",
    "CallTimeout",
    "prepare",
    "run",
]
