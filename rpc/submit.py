"""eth_sendRawTransaction: decode, check, and hand the transaction to the replica's sink.

A replica never executes or pools transactions: it checks what geth's RPC layer
checks before the pool (the encoding, the signature, the chain id, the 1 ether fee
cap) and what geth's pool checks against the head (size, gas, fees, intrinsic gas,
nonce, balance), then gives the raw bytes to the ``TransactionSink`` (in the
replica, the transaction topic the emitters read) and answers the transaction hash.
A sink refuses by raising; its message reaches the client as a -32000 error.

A blob transaction's sidecar follows the head's fork, as geth's RPC does: before
Osaka only version 0 (one KZG proof per blob); from Osaka on, version 1 (EIP-7594
cell proofs), and a verified version-0 sidecar is converted to version 1 before it
goes to the sink, since the network's blob pools take no other after Osaka.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from eth.abc import SignedTransactionAPI
from eth.vm.forks.prague import PragueVM
from eth_utils import ValidationError, keccak

from chain.errors import InvalidTransaction, KzgWorkerUnavailable
from chain.kzg import cell_proofs
from chain.osaka import OsakaVM, check_transaction_limits
from chain.transactions import (BlobSidecar, check_sidecar_commitments, check_sidecar_version, encode_network_form,
                                split_network_form, verify_sidecar_proofs, with_cell_proofs)
from rpc import params as p
from rpc.backend import ReplicaBackend, TransactionSink
from rpc.dispatch import Method, MethodTable
from rpc.errors import Overloaded, RpcError, ServerError
from rpc.format import data, fee_caps, legacy_chain_id, legacy_v, tx_type

BLOB_TX_TYPE = 3
TX_FEE_CAP_WEI = 10**18
"""geth's default ``--rpc.txfeecap`` (1 ether)."""
TX_MAX_SIZE = 4 * 32 * 1024
"""geth's legacy pool: largest transaction it accepts, in bytes."""
BLOB_TX_MAX_SIZE = 1024 * 1024
"""geth's blob pool: largest blob transaction (with its sidecar), in bytes."""
MAX_INITCODE_SIZE = 2 * 24576
"""EIP-3860 (Shanghai)."""
FLOOR_BASE_GAS, FLOOR_PER_TOKEN = 21_000, 10
"""EIP-7623 (Prague): a transaction's gas must cover 21000 + 10 per calldata token (zero byte 1, other 4)."""
GAS_PER_BLOB = 2**17

T = TypeVar("T")


def chain_checked(check: Callable[[], Any]) -> Any:
    """Run a chain-level transaction check, with its reason as the client's error."""
    try:
        return check()
    except InvalidTransaction as error:
        raise ServerError(error.reason) from None


def decode_transaction(backend: ReplicaBackend, raw: bytes) -> SignedTransactionAPI:
    """Decode with the head's fork rules, with geth's words for what does not decode."""
    if not raw:
        raise ServerError("typed transaction too short")
    builder = backend.vm_class(backend.head()).get_transaction_builder()
    try:
        return builder.decode(raw)
    except Exception as error:  # noqa: BLE001 - py-evm raises many decode error types
        if raw[0] < 0x7F:
            known = (1, 2, 3, 4)
            if raw[0] not in known:
                raise ServerError("transaction type not supported") from None
        raise ServerError(f"rlp: {error}") from None


def check_transaction(backend: ReplicaBackend, tx: SignedTransactionAPI) -> bytes:
    """The checks geth makes before its pool; returns the recovered sender."""
    fee_cap, _ = fee_caps(tx)
    fee = fee_cap * tx.gas
    if fee > TX_FEE_CAP_WEI:
        raise ServerError(f"tx fee ({fee / 10**18:.2f} ether) exceeds the configured cap (1.00 ether)")
    chain_id = legacy_chain_id(legacy_v(tx)) if tx_type(tx) == 0 else tx.chain_id
    if chain_id is not None and chain_id != backend.chain_id:
        raise ServerError("invalid chain id for signer")
    try:
        return tx.sender
    except Exception:  # noqa: BLE001 - signature recovery failures vary by key backend
        raise ServerError("invalid sender") from None


def check_osaka_limits(tx: SignedTransactionAPI) -> None:
    """Osaka's per-transaction gas cap (EIP-7825) and blob count (EIP-7594), as the chain checks them;
    before a sidecar is converted, so a transaction no Osaka pool takes is never converted."""
    try:
        check_transaction_limits(tx)
    except ValidationError as error:
        raise ServerError(str(error)) from None


def check_pool_rules(backend: ReplicaBackend, tx: SignedTransactionAPI, raw: bytes, sender: bytes) -> None:
    """What geth's pool checks before it takes a transaction (``txpool.ValidateTransaction`` and
    ``ValidateTransactionWithState``), at the replica's head, with geth's words."""
    head = backend.head()
    kind = tx_type(tx)
    limit = BLOB_TX_MAX_SIZE if kind == BLOB_TX_TYPE else TX_MAX_SIZE
    if len(raw) > limit:
        raise ServerError(f"oversized data: transaction size {len(raw)}, limit {limit}")
    if tx.to in (b"", None) and len(tx.data) > MAX_INITCODE_SIZE:
        raise ServerError(f"max initcode size exceeded: code size {len(tx.data)}, limit {MAX_INITCODE_SIZE}")
    if tx.gas > head.gas_limit:
        raise ServerError("exceeds block gas limit")
    if issubclass(backend.vm_class(head), OsakaVM):
        check_osaka_limits(tx)
    fee_cap, tip_cap = fee_caps(tx)
    if tip_cap > fee_cap:
        raise ServerError("max priority fee per gas higher than max fee per gas")
    intrinsic = tx.intrinsic_gas
    if tx.gas < intrinsic:
        raise ServerError(f"intrinsic gas too low: gas {tx.gas}, minimum needed {intrinsic}")
    if issubclass(backend.vm_class(head), PragueVM):
        floor = FLOOR_BASE_GAS + FLOOR_PER_TOKEN * sum(4 if byte else 1 for byte in tx.data)
        if tx.gas < floor:
            raise ServerError(f"insufficient gas for floor data gas cost: gas {tx.gas}, minimum needed {floor}")
    try:
        tx.validate()
    except Exception as error:  # noqa: BLE001 - py-evm's field checks (ranges, EIP-7702 lists ...)
        raise ServerError(f"invalid transaction: {error}") from None
    account = backend.state.account(head.state_root, sender)
    if account.nonce > tx.nonce:
        raise ServerError(f"nonce too low: next nonce {account.nonce}, tx nonce {tx.nonce}")
    cost = tx.gas * fee_cap + tx.value
    if kind == BLOB_TX_TYPE:
        cost += GAS_PER_BLOB * len(tx.blob_versioned_hashes) * tx.max_fee_per_blob_gas
    if account.balance < cost:
        raise ServerError(f"insufficient funds for gas * price + value: balance {account.balance}, "
                          f"tx cost {cost}, overshot {cost - account.balance}")


async def in_kzg_worker(backend: ReplicaBackend, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in the backend's ``KzgWorker`` (off the event loop: ckzg holds the GIL);
    a full or stopped worker answers -32005, to be retried."""
    try:
        return await backend.kzg.run(work, *args)
    except KzgWorkerUnavailable as error:
        raise Overloaded(str(error)) from None


async def check_sidecar(backend: ReplicaBackend, tx: SignedTransactionAPI, sidecar: BlobSidecar, osaka: bool) -> None:
    """The sidecar is of a version the head's fork takes and verifies. Version 0's proofs (3-7 ms a
    blob) are checked on the event loop; version 1's (128 per blob, 29-52 ms a blob) in the worker."""
    chain_checked(lambda: check_sidecar_version(sidecar, osaka))
    chain_checked(lambda: check_sidecar_commitments(tx, sidecar))
    if sidecar.version == 0:
        chain_checked(lambda: verify_sidecar_proofs(sidecar))
        return
    try:
        await in_kzg_worker(backend, verify_sidecar_proofs, sidecar)
    except InvalidTransaction as error:
        raise ServerError(error.reason) from None


async def with_cell_proofs_converted(backend: ReplicaBackend, canonical: bytes, sidecar: BlobSidecar) -> bytes:
    """The network form with a verified version-0 sidecar converted to version 1 (geth's ``ToV1``).

    The cell proofs are computed in the worker (about a third to half a second a blob);
    the transaction's hash, the canonical form's, is unchanged.
    """
    try:
        proofs = await in_kzg_worker(backend, cell_proofs, sidecar.blobs)
    except (RuntimeError, ValueError) as error:  # ckzg's words for a blob it cannot extend
        raise ServerError(f"blob sidecar conversion failed: {error}") from None
    return encode_network_form(canonical, with_cell_proofs(sidecar, proofs))


async def eth_send_raw_transaction(backend: ReplicaBackend, raw: bytes) -> Any:
    sink = backend.tx_sink
    if sink is None:
        raise ServerError("transaction submission is not available on this replica")
    # A blob transaction in network form carries its sidecar: the hash is the canonical form's,
    # and the blobs' commitments and KZG proofs must verify before anything goes on the topic.
    canonical, sidecar = chain_checked(lambda: split_network_form(raw))
    tx = decode_transaction(backend, canonical)
    tx_hash = keccak(canonical)
    # Answered before any check, so a wallet resending a blob transaction does not have its sidecar
    # verified and converted again (a third to half a second a blob in the KZG worker): one already
    # pending in the cluster (the sink would put nothing on the topic), or whose first copy is still
    # on its way there (answered like that copy, once it is known).
    if backend.pending.get(tx_hash) is not None:
        return data(tx_hash)
    if tx_hash in backend.in_flight:
        await backend.in_flight.join(tx_hash)
        return data(tx_hash)
    osaka = issubclass(backend.vm_class(backend.head()), OsakaVM)
    if sidecar is not None:
        await check_sidecar(backend, tx, sidecar, osaka)
    sender = check_transaction(backend, tx)
    check_pool_rules(backend, tx, raw, sender)

    async def send() -> None:
        forwarded = raw
        if sidecar is not None and sidecar.version == 0 and osaka:
            # Last, after every cheaper check. The converted form stays within the pool's size limit: 128
            # proofs of 48 bytes add 6 KiB to a 128 KiB blob, and Osaka allows 6 blobs (6 x 134 KiB < 1 MiB).
            forwarded = await with_cell_proofs_converted(backend, canonical, sidecar)
        await submitted(sink, forwarded, tx_hash, sender)

    await backend.in_flight.send_once(tx_hash, send)
    return data(tx_hash)


async def submitted(sink: TransactionSink, raw: bytes, tx_hash: bytes, sender: bytes) -> None:
    """``raw`` handed to the sink; a refusal (the sink raises) reaches the client as -32000 in its words."""
    try:
        await sink.submit(raw, tx_hash, sender)
    except RpcError:
        raise
    except Exception as error:  # noqa: BLE001 - the sink refuses by raising; its words reach the client
        raise ServerError(str(error) or type(error).__name__) from None


METHODS: MethodTable = {
    "eth_sendRawTransaction": Method(eth_send_raw_transaction, (p.required(p.data),), waits_on_broker=True),
}
