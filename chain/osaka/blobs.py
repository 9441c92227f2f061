"""Blob parameters as data: one ``BlobParameters`` per fork, from genesis ``blobSchedule``.

EIP-7892 turned the blob target, maximum and base fee update fraction into per-fork
configuration: Osaka and every blob-parameter-only fork (``bpo1`` … ``bpoN``) run the
same rules with different numbers. py-evm hard-codes the Cancun and Prague numbers as
module constants; from Osaka on they live here, so one VM class serves every BPO fork.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth._utils.calculations import fake_exponential
from eth.abc import BlockHeaderAPI
from eth.vm.forks.cancun.constants import (
    BLOB_BASE_FEE_UPDATE_FRACTION as CANCUN_FRACTION,
    GAS_PER_BLOB,
    MAX_BLOB_GAS_PER_BLOCK as CANCUN_MAX_GAS,
    MIN_BLOB_BASE_FEE,
    TARGET_BLOB_GAS_PER_BLOCK as CANCUN_TARGET_GAS,
)
from eth.vm.forks.prague.constants import (
    BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE as PRAGUE_FRACTION,
    MAX_BLOB_GAS_PER_BLOCK as PRAGUE_MAX_GAS,
    TARGET_BLOB_GAS_PER_BLOCK as PRAGUE_TARGET_GAS,
)

BLOB_BASE_COST = 2**13
"""EIP-7918: execution gas a blob is priced at, at least, through the reserve price."""


@dataclass(frozen=True)
class BlobParameters:
    """One fork's blob schedule entry (geth's ``BlobConfig``)."""

    target: int
    """Blobs per block the base fee steers towards."""
    max: int
    """Most blobs one block may carry."""
    base_fee_update_fraction: int
    """Denominator of the base fee's exponential update."""

    @property
    def target_gas(self) -> int:
        return self.target * GAS_PER_BLOB

    @property
    def max_gas(self) -> int:
        return self.max * GAS_PER_BLOB

    def base_fee(self, excess_blob_gas: int) -> int:
        """EIP-4844's blob base fee for a block with ``excess_blob_gas``."""
        return fake_exponential(MIN_BLOB_BASE_FEE, excess_blob_gas, self.base_fee_update_fraction)

    def excess_after(self, parent: BlockHeaderAPI, reserve_price: bool) -> int:
        """The excess blob gas of a child of ``parent`` run under these parameters.

        ``reserve_price`` applies EIP-7918 (Osaka on): while blobs cost less than
        ``BLOB_BASE_COST`` units of execution gas, the excess only grows, so the blob
        fee cannot sink below what the execution layer pays to carry them.
        """
        excess = getattr(parent, "excess_blob_gas", None) or 0
        used = getattr(parent, "blob_gas_used", None) or 0
        if excess + used < self.target_gas:
            return 0
        if reserve_price:
            parent_base_fee = getattr(parent, "base_fee_per_gas", None) or 0
            if BLOB_BASE_COST * parent_base_fee > GAS_PER_BLOB * self.base_fee(excess):
                return excess + used * (self.max - self.target) // self.max
        return excess + used - self.target_gas


CANCUN_BLOBS = BlobParameters(
    CANCUN_TARGET_GAS // GAS_PER_BLOB, CANCUN_MAX_GAS // GAS_PER_BLOB, CANCUN_FRACTION
)
"""What py-evm's Cancun VM hard-codes (mainnet's values)."""

PRAGUE_BLOBS = BlobParameters(
    PRAGUE_TARGET_GAS // GAS_PER_BLOB, PRAGUE_MAX_GAS // GAS_PER_BLOB, PRAGUE_FRACTION
)
"""What py-evm's Prague VM hard-codes (mainnet's values, and Osaka's default)."""
