"""Osaka (Fusaka) and the blob-parameter-only forks after it, on py-evm's Prague VM.

py-evm 0.12 ends at Prague. This package adds Osaka's execution-layer EIPs:

- ``computation``: EIP-7939 CLZ, the Osaka precompile set.
- ``precompiles``: EIP-7951 P-256 verify at 0x100, EIP-7823/7883 modexp.
- ``state``: EIP-7825's 2^24 transaction gas cap, EIP-7594's 6 blobs per transaction,
  the blob base fee from the fork's parameters.
- ``blobs``: ``BlobParameters`` (EIP-7892) and EIP-7918's bounded excess blob gas.
- ``vm``: ``OsakaVM`` (EIP-7934's block size cap) and ``osaka_vm`` for BPO forks.
"""

from chain.osaka.blobs import CANCUN_BLOBS, PRAGUE_BLOBS, BlobParameters
from chain.osaka.state import TRANSACTION_GAS_LIMIT_CAP, check_transaction_limits
from chain.osaka.vm import OsakaVM, blob_parameters_of, excess_blob_gas_after, osaka_vm

__all__ = [
    "CANCUN_BLOBS",
    "PRAGUE_BLOBS",
    "TRANSACTION_GAS_LIMIT_CAP",
    "BlobParameters",
    "OsakaVM",
    "blob_parameters_of",
    "check_transaction_limits",
    "excess_blob_gas_after",
    "osaka_vm",
]
