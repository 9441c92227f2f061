"""Raw transactions on an Osaka chain: EIP-7594 cell-proof sidecars, the gas cap, converting
a version-0 sidecar to cell proofs."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

import ckzg
import pytest
import rlp
from eth.chains.base import Chain
from eth.db.atomic import AtomicDB
from eth_account import Account

from chain.config import open_chain
from chain.dev import dev_accounts, init_dev_chain
from chain.errors import InvalidTransaction
from chain.importer import import_chain
from chain.kzg import cell_proofs, trusted_setup
from chain.transactions import (CELLS_PER_EXT_BLOB, BlobSidecar, decode_transaction, encode_network_form,
                                kzg_to_versioned_hash, split_network_form, verify_sidecar, with_cell_proofs)
from tests.chain.conftest import RPC_COMPAT, RpcCompat
from tests.chain.test_chain_transactions import _sent

OSAKA = RpcCompat(RPC_COMPAT.parent / "osaka-2026-07")


@pytest.fixture(scope="module")
def osaka_chain() -> Chain:
    db = AtomicDB()
    import_chain(db, OSAKA.genesis, OSAKA.chain)
    return open_chain(db)


def _cell_proof_wrapper(raw: bytes) -> list[Any]:
    body, version, blobs, commitments, proofs = rlp.decode(raw[1:])
    assert version == b"\x01"
    return [body, version, blobs, commitments, proofs]


def test_cell_proof_sidecar_verifies_and_is_dropped(osaka_chain: Chain) -> None:
    raw, expected_hash = _sent(OSAKA, "send-blob-tx")
    _, sidecar = split_network_form(raw)

    transaction = decode_transaction(osaka_chain, raw)

    assert sidecar is not None and sidecar.version == 1
    assert len(sidecar.proofs) == CELLS_PER_EXT_BLOB * len(sidecar.blobs)
    assert "0x" + transaction.hash.hex() == expected_hash


def test_cell_proofs_of_another_blob_are_refused(osaka_chain: Chain) -> None:
    raw, _ = _sent(OSAKA, "send-blob-tx")
    body, version, blobs, commitments, proofs = _cell_proof_wrapper(raw)
    # The recorded blob is all zeros; make its first field element 1 (still canonical).
    altered = [blobs[0][:31] + b"\x01" + blobs[0][32:], *blobs[1:]]

    with pytest.raises(InvalidTransaction, match="blob KZG proofs do not verify"):
        decode_transaction(osaka_chain, b"\x03" + rlp.encode([body, version, altered, commitments, proofs]))


def test_cell_proof_sidecar_missing_proofs_is_refused(osaka_chain: Chain) -> None:
    raw, _ = _sent(OSAKA, "send-blob-tx")
    body, version, blobs, commitments, proofs = _cell_proof_wrapper(raw)

    with pytest.raises(InvalidTransaction, match="127 proofs for 1 versioned hashes"):
        decode_transaction(osaka_chain, b"\x03" + rlp.encode([body, version, blobs, commitments, proofs[:-1]]))


@pytest.mark.parametrize(("gas", "refused"), [(2**24, False), (2**24 + 1, True)])
def test_transaction_over_the_gas_cap_is_refused_on_osaka_only(gas: int, refused: bool) -> None:
    transaction = {"type": 2, "chainId": 1337, "nonce": 0, "to": dev_accounts()[1][0], "value": 0,
                   "gas": gas, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    raw = bytes(Account.sign_transaction(transaction, dev_accounts()[0][1]).raw_transaction)
    prague = init_dev_chain(AtomicDB(), fork="prague")
    osaka = init_dev_chain(AtomicDB(), fork="osaka")

    assert decode_transaction(prague, raw).gas == gas
    if refused:
        with pytest.raises(InvalidTransaction, match="transaction gas limit too high"):
            decode_transaction(osaka, raw)
    else:
        assert decode_transaction(osaka, raw).gas == gas


def random_blob(seed: int = 0) -> bytes:
    """A blob of distinct field elements (each below the modulus: a leading zero byte); an all-zero or
    constant blob would have all-infinity proofs, which any wrong order of proofs would match."""
    return b"".join(b"\x00" + hashlib.sha256(f"{seed}:{index}".encode()).digest()[1:] for index in range(4096))


def version_0(raw: bytes) -> bytes:
    """The same transaction with an EIP-4844 sidecar: one blob proof per blob instead of cell proofs."""
    canonical, sidecar = split_network_form(raw)
    assert sidecar is not None
    proofs = tuple(ckzg.compute_blob_kzg_proof(blob, commitment, trusted_setup())
                   for blob, commitment in zip(sidecar.blobs, sidecar.commitments))
    return encode_network_form(canonical, BlobSidecar(sidecar.blobs, sidecar.commitments, proofs))


@pytest.mark.parametrize("recording", [RPC_COMPAT, OSAKA.root], ids=["version 0", "version 1"])
def test_network_form_encoding_inverts_the_split(recording: Any) -> None:
    raw, _ = _sent(RpcCompat(recording), "send-blob-tx")

    assert encode_network_form(*split_network_form(raw)) == raw  # type: ignore[arg-type]


def test_version_0_sidecar_converted_to_cell_proofs_is_the_one_geth_sent(osaka_chain: Chain) -> None:
    raw, _ = _sent(OSAKA, "send-blob-tx")
    canonical, sidecar = split_network_form(version_0(raw))
    assert sidecar is not None and sidecar.version == 0

    converted = with_cell_proofs(sidecar, cell_proofs(sidecar.blobs))

    assert encode_network_form(canonical, converted) == raw


def test_version_0_sidecar_converted_to_cell_proofs_verifies() -> None:
    blob = random_blob()
    commitment = ckzg.blob_to_kzg_commitment(blob, trusted_setup())
    transaction = SimpleNamespace(blob_versioned_hashes=(kzg_to_versioned_hash(commitment),))
    proof = ckzg.compute_blob_kzg_proof(blob, commitment, trusted_setup())

    converted = with_cell_proofs(BlobSidecar((blob,), (commitment,), (proof,)), cell_proofs((blob,)))

    assert converted.version == 1 and len(converted.proofs) == CELLS_PER_EXT_BLOB
    verify_sidecar(transaction, converted)  # type: ignore[arg-type]
