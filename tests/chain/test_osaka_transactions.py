"""Raw transactions on an Osaka chain: EIP-7594 cell-proof sidecars, the gas cap."""

from __future__ import annotations

from typing import Any

import pytest
import rlp
from eth.chains.base import Chain
from eth.db.atomic import AtomicDB
from eth_account import Account

from chain.config import open_chain
from chain.dev import dev_accounts, init_dev_chain
from chain.errors import InvalidTransaction
from chain.importer import import_chain
from chain.transactions import CELLS_PER_EXT_BLOB, decode_transaction, split_network_form
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
