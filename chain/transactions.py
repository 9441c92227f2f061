"""Signed raw transactions → py-evm transactions, with the checks that need no state.

Shared by the dev miner and by anything that accepts raw transactions
(``eth_sendRawTransaction``). Two things py-evm's transaction builder leaves out
are added here: the chain-id check (py-evm never compares a transaction's chain id
with the chain's) and the EIP-4844 network form, in which a blob transaction
travels with its blobs, commitments and proofs (``0x03 || rlp([tx, blobs,
commitments, proofs])``; from Osaka, EIP-7594's ``0x03 || rlp([tx, 1, blobs,
commitments, cell_proofs])``). The sidecar is verified and dropped; blocks and
transaction hashes use the canonical form without it. ``encode_network_form`` wraps
a canonical transaction again, for a sidecar converted to cell proofs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import ckzg
import rlp
from eth.abc import SignedTransactionAPI
from eth.chains.base import Chain
from eth.exceptions import PyEVMError
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE, VERSIONED_HASH_VERSION_KZG
from eth_keys.exceptions import BadSignature
from eth_typing import BlockNumber
from eth_utils import ValidationError
from rlp.exceptions import RLPException

from chain.errors import InvalidTransaction
from chain.kzg import TRUSTED_SETUP_PATH, trusted_setup
from chain.osaka import OsakaVM, check_transaction_limits

_DECODE_ERRORS = (RLPException, ValidationError, PyEVMError, ValueError, TypeError, IndexError)


CELLS_PER_EXT_BLOB = 128
"""EIP-7594: cells (and cell proofs) per extended blob."""


@dataclass(frozen=True)
class BlobSidecar:
    """The blobs, commitments and proofs a network-form blob transaction carries."""

    blobs: tuple[bytes, ...]
    commitments: tuple[bytes, ...]
    proofs: tuple[bytes, ...]
    version: int = 0
    """0: one KZG proof per blob (EIP-4844); 1: ``CELLS_PER_EXT_BLOB`` cell proofs per
    blob (EIP-7594, Osaka on)."""


def split_network_form(raw: bytes) -> tuple[bytes, BlobSidecar | None]:
    """(canonical encoding, sidecar) of a raw transaction; sidecar None if it has none."""
    if not raw or raw[0] != BLOB_TX_TYPE:
        return raw, None
    try:
        payload = rlp.decode(raw[1:])
    except RLPException:
        return raw, None  # let the builder report the malformed encoding
    # A canonical blob transaction is a flat field list; a wrapper nests it first.
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], list):
        return raw, None
    version = 0
    if len(payload) == 5 and isinstance(payload[1], bytes):
        version = int.from_bytes(payload[1], "big")
        if version != 1:
            raise InvalidTransaction(f"unknown blob sidecar wrapper version {version}")
        payload = [payload[0], *payload[2:]]
    if len(payload) != 4:
        raise InvalidTransaction(f"blob transaction wrapper has {len(payload)} parts, not 4")
    body, blobs, commitments, proofs = payload
    if not all(isinstance(part, list) for part in (blobs, commitments, proofs)):
        raise InvalidTransaction("malformed blob sidecar")
    canonical = bytes([BLOB_TX_TYPE]) + rlp.encode(body)
    return canonical, BlobSidecar(tuple(blobs), tuple(commitments), tuple(proofs), version)


def encode_network_form(canonical: bytes, sidecar: BlobSidecar) -> bytes:
    """The inverse of ``split_network_form``: a canonical blob transaction wrapped with its sidecar.

    Version 0 is ``0x03 || rlp([tx, blobs, commitments, proofs])``; version 1 (EIP-7594)
    puts its version between the transaction and the blobs.
    """
    if not canonical or canonical[0] != BLOB_TX_TYPE:
        raise ValueError("only a blob transaction carries a sidecar")
    version = [sidecar.version] if sidecar.version else []
    parts = [rlp.decode(canonical[1:]), *version, list(sidecar.blobs), list(sidecar.commitments),
             list(sidecar.proofs)]
    return bytes([BLOB_TX_TYPE]) + rlp.encode(parts)


def with_cell_proofs(sidecar: BlobSidecar, proofs: tuple[bytes, ...]) -> BlobSidecar:
    """The version-1 sidecar of the same blobs and commitments, with ``proofs`` (their cell
    proofs, from ``chain.kzg.cell_proofs``) in place of the per-blob proofs: geth's ``ToV1``."""
    if len(proofs) != CELLS_PER_EXT_BLOB * len(sidecar.blobs):
        raise ValueError(f"{len(proofs)} cell proofs for {len(sidecar.blobs)} blobs")
    return BlobSidecar(sidecar.blobs, sidecar.commitments, proofs, version=1)


def check_sidecar_version(sidecar: BlobSidecar, osaka: bool) -> None:
    """Cell proofs (version 1) exist from Osaka on; before it only version 0 is valid.

    After Osaka a version-0 sidecar is still accepted from clients, to be converted
    (execution-apis ``eth_sendRawTransaction``: "txs with blob proofs may still be
    accepted and will be auto-converted by the node").
    """
    if sidecar.version == 1 and not osaka:
        raise InvalidTransaction(
            "EIP-7594 cell-proof blob sidecars (wrapper version 1) are not valid before Osaka"
        )


def decode_transaction(
    chain: Chain, raw: bytes, block_number: int | None = None
) -> SignedTransactionAPI:
    """Decode and statically check a signed raw transaction of any type the fork knows.

    Checks encoding, signature, intrinsic gas, field ranges, the chain id and (for
    network-form blob transactions) the sidecar. ``block_number`` selects the fork;
    by default the block after the canonical head. Raises ``InvalidTransaction``.
    """
    if block_number is None:
        block_number = chain.get_canonical_head().block_number + 1
    vm_class = chain.get_vm_class_for_block_number(BlockNumber(block_number))
    canonical, sidecar = split_network_form(raw)
    try:
        transaction = vm_class.get_transaction_builder().decode(canonical)
    except _DECODE_ERRORS as exc:
        raise InvalidTransaction(f"cannot decode transaction: {exc}") from exc
    try:
        transaction.validate()
        transaction.sender
    except (ValidationError, BadSignature, ValueError) as exc:
        raise InvalidTransaction(f"invalid transaction: {exc}") from exc
    _check_chain_id(transaction, chain.chain_id)
    osaka = issubclass(vm_class, OsakaVM)
    if osaka:
        try:
            check_transaction_limits(transaction)
        except ValidationError as exc:
            raise InvalidTransaction(str(exc)) from exc
    if sidecar is not None:
        check_sidecar_version(sidecar, osaka)
    if transaction.gas < transaction.intrinsic_gas:
        # py-evm's typed transactions do not check this in validate(); the miner would fail mid-block.
        raise InvalidTransaction(
            f"intrinsic gas too low: gas {transaction.gas}, minimum needed {transaction.intrinsic_gas}"
        )
    if sidecar is not None:
        verify_sidecar(transaction, sidecar)
    return transaction


def _check_chain_id(transaction: SignedTransactionAPI, chain_id: int) -> None:
    tx_chain_id = transaction.chain_id
    if tx_chain_id is not None and tx_chain_id != chain_id:
        raise InvalidTransaction(
            f"transaction is for chain id {tx_chain_id}, this chain is {chain_id}"
        )


def verify_sidecar(transaction: SignedTransactionAPI, sidecar: BlobSidecar) -> None:
    """The sidecar matches the versioned hashes and its KZG proofs verify (EIP-4844, EIP-7594)."""
    check_sidecar_commitments(transaction, sidecar)
    verify_sidecar_proofs(sidecar)


def check_sidecar_commitments(transaction: SignedTransactionAPI, sidecar: BlobSidecar) -> None:
    """As many blobs and commitments as versioned hashes, the proofs their version needs, and each
    commitment hashing to its versioned hash: the cheap half of ``verify_sidecar``, no KZG."""
    hashes = tuple(getattr(transaction, "blob_versioned_hashes", ()))
    proofs_per_blob = CELLS_PER_EXT_BLOB if sidecar.version == 1 else 1
    counts = {len(hashes), len(sidecar.blobs), len(sidecar.commitments)}
    if len(counts) != 1 or not hashes or len(sidecar.proofs) != proofs_per_blob * len(hashes):
        raise InvalidTransaction(
            f"blob sidecar has {len(sidecar.blobs)} blobs, {len(sidecar.commitments)} "
            f"commitments and {len(sidecar.proofs)} proofs for {len(hashes)} versioned hashes"
        )
    for index, (commitment, versioned_hash) in enumerate(zip(sidecar.commitments, hashes)):
        if kzg_to_versioned_hash(commitment) != versioned_hash:
            raise InvalidTransaction(f"blob commitment {index} does not match its versioned hash")


def verify_sidecar_proofs(sidecar: BlobSidecar, precompute: int = 0) -> None:
    """The sidecar's KZG proofs verify, against the trusted setup loaded with ``precompute``.

    The costly half of ``verify_sidecar``, with the GIL held throughout: p50 3-7 ms a
    blob for version 0, 29-52 ms for version 1 (``bench/blobs.py``), so the RPC runs
    version 1 in its ``KzgWorker``. Raises ``InvalidTransaction``.
    """
    setup = trusted_setup(TRUSTED_SETUP_PATH, precompute)
    try:
        valid = _cell_proofs_verify(sidecar, setup) if sidecar.version == 1 else _blob_proofs_verify(sidecar, setup)
    except (RuntimeError, ValueError) as exc:  # ckzg's C code reports malformed inputs so
        raise InvalidTransaction(f"malformed blob sidecar: {exc}") from exc
    if not valid:
        raise InvalidTransaction("blob KZG proofs do not verify")


def _blob_proofs_verify(sidecar: BlobSidecar, setup: Any) -> bool:
    """EIP-4844: one proof per blob."""
    return bool(ckzg.verify_blob_kzg_proof_batch(
        b"".join(sidecar.blobs), b"".join(sidecar.commitments), b"".join(sidecar.proofs), setup,
    ))


def _cell_proofs_verify(sidecar: BlobSidecar, setup: Any) -> bool:
    """EIP-7594: a proof for each cell of each extended blob, checked in one batch."""
    cells = [cell for blob in sidecar.blobs for cell in ckzg.compute_cells(blob, setup)]
    commitments = [c for c in sidecar.commitments for _ in range(CELLS_PER_EXT_BLOB)]
    indices = list(range(CELLS_PER_EXT_BLOB)) * len(sidecar.blobs)
    return bool(ckzg.verify_cell_kzg_proof_batch(commitments, indices, cells, list(sidecar.proofs), setup))


def kzg_to_versioned_hash(commitment: bytes) -> bytes:
    """EIP-4844: version byte followed by sha256(commitment)[1:]."""
    return VERSIONED_HASH_VERSION_KZG + hashlib.sha256(commitment).digest()[1:]
