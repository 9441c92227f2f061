"""The Osaka VM on py-evm's Prague VM, and one configured class per blob schedule entry.

Osaka changes no block or header layout, so Prague's block classes serve. What
changes is the blob accounting (EIP-7918's reserve price, parameters per fork) and
block validation (EIP-7934's size cap); the EVM changes are in ``computation``.
"""

from __future__ import annotations

from typing import Any

from eth.abc import VirtualMachineAPI

import rlp
from eth._utils.db import get_block_header_by_hash
from eth.abc import BlockAPI, BlockHeaderAPI
from eth.vm.forks.cancun import get_total_blob_gas
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.headers import create_prague_header_from_parent
from eth.vm.state import BaseState
from eth_utils import ValidationError

from chain.osaka.blobs import CANCUN_BLOBS, PRAGUE_BLOBS, BlobParameters
from chain.osaka.state import OsakaState

MAX_BLOCK_SIZE = 10_485_760
SAFETY_MARGIN = 2_097_152
MAX_RLP_BLOCK_SIZE = MAX_BLOCK_SIZE - SAFETY_MARGIN
"""EIP-7934: the largest RLP-encoded block (10 MiB less a 2 MiB margin for the CL)."""


class OsakaVM(PragueVM):
    """Osaka's rules; ``blob_parameters`` says which schedule entry the fork runs."""

    fork = "osaka"
    _state_class: type[BaseState] = OsakaState
    blob_parameters: BlobParameters = PRAGUE_BLOBS

    @classmethod
    def create_header_from_parent(  # type: ignore[override]
        cls, parent_header: BlockHeaderAPI | None, **header_params: Any
    ) -> BlockHeaderAPI:
        header: BlockHeaderAPI = create_prague_header_from_parent(parent_header, **header_params)
        if parent_header is None:
            return header
        return header.copy(excess_blob_gas=cls.blob_parameters.excess_after(parent_header, True))

    def validate_block(self, block: BlockAPI) -> None:
        size = len(rlp.encode(block))
        if size > MAX_RLP_BLOCK_SIZE:
            raise ValidationError(
                f"block RLP is {size} bytes, more than the {MAX_RLP_BLOCK_SIZE} allowed"
            )
        super().validate_block(block)

    def validate_block_blobs(self, block: BlockAPI) -> None:
        parent = get_block_header_by_hash(block.header.parent_hash, self.chaindb)
        expected = self.blob_parameters.excess_after(parent, True)
        if block.header.excess_blob_gas != expected:
            raise ValidationError(
                f"block excess blob gas {block.header.excess_blob_gas}, expected {expected}"
            )
        used = sum(get_total_blob_gas(tx) for tx in block.transactions)
        if used > self.blob_parameters.max_gas:
            raise ValidationError(
                f"block blob gas {used} exceeds the maximum {self.blob_parameters.max_gas}"
            )
        if block.header.blob_gas_used != used:
            raise ValidationError(
                f"block blob gas used ({block.header.blob_gas_used}) does not match "
                f"total blob gas used ({used})"
            )


def osaka_vm(fork: str, blobs: BlobParameters) -> type[OsakaVM]:
    """The VM of an Osaka-rules fork (``osaka``, ``bpo1`` …) running ``blobs``."""
    state_class = OsakaState.configure(__name__=f"OsakaState_{fork}", blob_parameters=blobs)
    return OsakaVM.configure(  # type: ignore[return-value]
        __name__=f"OsakaVM_{fork}", fork=fork, blob_parameters=blobs, _state_class=state_class
    )


def blob_parameters_of(vm_class: type[VirtualMachineAPI]) -> BlobParameters:
    """The blob parameters a VM class from Cancun on runs (py-evm's fixed ones before Osaka)."""
    if issubclass(vm_class, OsakaVM):
        return vm_class.blob_parameters
    return PRAGUE_BLOBS if issubclass(vm_class, PragueVM) else CANCUN_BLOBS


def excess_blob_gas_after(vm_class: type[VirtualMachineAPI], parent: BlockHeaderAPI) -> int:
    """The excess blob gas of a child of ``parent`` that ``vm_class`` runs."""
    return blob_parameters_of(vm_class).excess_after(parent, issubclass(vm_class, OsakaVM))
