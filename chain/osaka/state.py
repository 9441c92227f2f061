"""Osaka's state rules: the blob fee from the fork's parameters, EIP-7825's gas cap."""

from __future__ import annotations

from eth.abc import SignedTransactionAPI
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth.vm.forks.prague.state import PragueState
from eth_utils import ValidationError

from chain.osaka.blobs import PRAGUE_BLOBS, BlobParameters
from chain.osaka.computation import OsakaComputation

TRANSACTION_GAS_LIMIT_CAP = 2**24
"""EIP-7825: the most gas one transaction may ask for."""

MAX_BLOBS_PER_TRANSACTION = 6
"""EIP-7594: the most blobs one transaction may carry (cell proofs per blob are bounded)."""


def check_transaction_limits(transaction: SignedTransactionAPI) -> None:
    """Refuse a transaction over Osaka's per-transaction gas or blob limits.

    Stateless, so the block importer, the dev miner and ``eth_sendRawTransaction``
    run the same check.
    """
    if transaction.gas > TRANSACTION_GAS_LIMIT_CAP:
        raise ValidationError(
            f"transaction gas limit too high (cap: {TRANSACTION_GAS_LIMIT_CAP}, "
            f"tx: {transaction.gas})"
        )
    if transaction.type_id == BLOB_TX_TYPE:
        blobs = len(transaction.blob_versioned_hashes)
        if blobs > MAX_BLOBS_PER_TRANSACTION:
            raise ValidationError(
                f"blob transaction has {blobs} blobs, more than {MAX_BLOBS_PER_TRANSACTION}"
            )


class OsakaState(PragueState):
    """Prague's state with Osaka's transaction limits and per-fork blob parameters."""

    computation_class = OsakaComputation
    blob_parameters: BlobParameters = PRAGUE_BLOBS
    """Set per fork by ``chain.osaka.vm.osaka_vm``."""

    @property
    def blob_base_fee(self) -> int:
        return self.blob_parameters.base_fee(self.execution_context.excess_blob_gas or 0)

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        check_transaction_limits(transaction)
        super().validate_transaction(transaction)
