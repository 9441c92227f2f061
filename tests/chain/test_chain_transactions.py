"""Decoding raw transactions: all types, the blob network form, the chain id."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rlp

from chain.config import open_chain
from chain.errors import InvalidTransaction
from chain.transactions import decode_transaction, split_network_form


def _sent(rpc_compat: Any, test: str) -> tuple[bytes, str]:
    """(raw transaction, hash geth answered) of an eth_sendRawTransaction recording."""
    lines = (rpc_compat.root / "eth_sendRawTransaction" / f"{test}.io").read_text().splitlines()
    request = json.loads(next(line for line in lines if line.startswith(">> "))[3:])
    response = json.loads(next(line for line in lines if line.startswith("<< "))[3:])
    return bytes.fromhex(request["params"][0][2:]), response["result"]


@pytest.mark.parametrize(
    "test",
    [
        "send-legacy-transaction",
        "send-access-list-transaction",
        "send-dynamic-fee-transaction",
        "send-dynamic-fee-access-list-transaction",
        "send-blob-tx",
    ],
)
def test_every_transaction_type_decodes_to_geths_hash(imported: Any, rpc_compat: Any, test: str) -> None:
    raw, expected_hash = _sent(rpc_compat, test)

    transaction = decode_transaction(open_chain(imported.db), raw)

    assert "0x" + transaction.hash.hex() == expected_hash


def test_blob_network_form_drops_the_verified_sidecar(imported: Any, rpc_compat: Any) -> None:
    raw, _ = _sent(rpc_compat, "send-blob-tx")

    canonical, sidecar = split_network_form(raw)

    assert sidecar is not None and len(sidecar.blobs) == len(sidecar.proofs) >= 1
    assert len(canonical) < len(raw)
    assert decode_transaction(open_chain(imported.db), canonical).hash == (
        decode_transaction(open_chain(imported.db), raw).hash
    )


def test_blob_sidecar_whose_proof_does_not_verify_is_refused(imported: Any, rpc_compat: Any) -> None:
    raw, _ = _sent(rpc_compat, "send-blob-tx")
    body, blobs, commitments, proofs = rlp.decode(raw[1:])
    # The recorded blob is all zeros; make its first field element 1 (still canonical).
    altered = [blobs[0][:31] + b"\x01" + blobs[0][32:]] + blobs[1:]
    tampered = b"\x03" + rlp.encode([body, altered, commitments, proofs])

    with pytest.raises(InvalidTransaction, match="KZG|sidecar"):
        decode_transaction(open_chain(imported.db), tampered)


def test_transaction_for_another_chain_is_refused(imported: Any, rpc_compat: Any) -> None:
    raw, _ = _sent(rpc_compat, "send-dynamic-fee-transaction")
    chain = open_chain(imported.db)

    chain.chain_id = 1  # as if the same bytes were sent to another chain

    with pytest.raises(InvalidTransaction, match="chain id"):
        decode_transaction(chain, raw)


def test_cell_proof_sidecar_is_refused_before_osaka(imported: Any, rpc_compat: Any) -> None:
    raw, _ = _sent(rpc_compat, "send-blob-tx")
    body = rlp.decode(raw[1:])[0]
    osaka_form = b"\x03" + rlp.encode([body, b"\x01", [], [], []])

    with pytest.raises(InvalidTransaction, match="Osaka"):
        decode_transaction(open_chain(imported.db), osaka_form)


def test_point_evaluation_precompile_reuses_one_trusted_setup() -> None:
    import eth.precompiles.point_evaluation as point_evaluation
    from eth.db.atomic import AtomicDB

    from chain.dev import init_dev_chain

    init_dev_chain(AtomicDB())  # building any chain applies the patch

    path = point_evaluation.TRUSTED_SETUP_PATH
    assert point_evaluation.load_trusted_setup(path, 0) is point_evaluation.load_trusted_setup(path, 0)


def test_typed_transaction_below_intrinsic_gas_is_refused() -> None:
    from eth.db.atomic import AtomicDB
    from eth_account import Account

    from chain.dev import dev_accounts, init_dev_chain

    chain = init_dev_chain(AtomicDB())
    address, key = dev_accounts()[0]
    raw = Account.sign_transaction(
        {"to": address, "value": 1, "gas": 20_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1,
         "nonce": 0, "chainId": 1337, "type": 2},
        key,
    ).raw_transaction
    with pytest.raises(InvalidTransaction, match="intrinsic gas too low"):
        decode_transaction(chain, bytes(raw))
