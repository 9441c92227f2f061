"""The system contracts a genesis must predeploy for Cancun and Prague rules.

A chain that starts at Prague needs them in its genesis allocation, exactly as
geth's dev genesis has them: py-evm updates the beacon-roots and block-history
storage only when the exact code is present, and reads EIP-7002/7251 requests by
calling the queue contracts (absent code means "no requests", silently). The
bytecode is the mainnet deployment (the same as geth's ``params`` and the
rpc-compat genesis); py-evm 0.12 ships only the first two.
"""

from __future__ import annotations

from eth.typing import AccountDetails, AccountState
from eth_typing import Address
from eth.vm.forks.cancun.constants import BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CONTRACT_CODE
from eth.vm.forks.prague.constants import (
    CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    HISTORY_STORAGE_ADDRESS,
    HISTORY_STORAGE_CONTRACT_CODE,
    WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
)

WITHDRAWAL_REQUEST_CONTRACT_CODE = bytes.fromhex(
    "3373fffffffffffffffffffffffffffffffffffffffe1460cb5760115f54807fffffffffffffffff"
    "ffffffffffffffffffffffffffffffffffffffffffffffff146101f457600182026001905f5b5f82"
    "111560685781019083028483029004916001019190604d565b909390049250505036603814608857"
    "366101f457346101f4575f5260205ff35b34106101f4576001546001016001556003548060030260"
    "04013381556001015f35815560010160203590553360601b5f5260385f601437604c5fa060010160"
    "0355005b6003546002548082038060101160df575060105b5f5b8181146101835782810160030260"
    "040181604c02815460601b8152601401816001015481526020019060020154807fffffffffffffff"
    "ffffffffffffffffff00000000000000000000000000000000168252906010019060401c90816038"
    "1c81600701538160301c81600601538160281c81600501538160201c81600401538160181c816003"
    "01538160101c81600201538160081c81600101535360010160e1565b910180921461019557906002"
    "556101a0565b90505f6002555f6003555b5f54807fffffffffffffffffffffffffffffffffffffff"
    "ffffffffffffffffffffffffff14156101cd57505f5b6001546002828201116101e25750505f6101"
    "e8565b01600290035b5f555f600155604c025ff35b5f5ffd"
)
"""EIP-7002 execution-layer withdrawal request queue (mainnet bytecode)."""

CONSOLIDATION_REQUEST_CONTRACT_CODE = bytes.fromhex(
    "3373fffffffffffffffffffffffffffffffffffffffe1460d35760115f54807fffffffffffffffff"
    "ffffffffffffffffffffffffffffffffffffffffffffffff1461019a57600182026001905f5b5f82"
    "111560685781019083028483029004916001019190604d565b909390049250505036606014608857"
    "3661019a573461019a575f5260205ff35b341061019a576001546001016001556003548060040260"
    "04013381556001015f358155600101602035815560010160403590553360601b5f5260605f601437"
    "60745fa0600101600355005b6003546002548082038060021160e7575060025b5f5b818114610129"
    "5782810160040260040181607402815460601b815260140181600101548152602001816002015481"
    "526020019060030154905260010160e9565b910180921461013b5790600255610146565b90505f60"
    "02555f6003555b5f54807fffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
    "ffffff141561017357505f5b6001546001828201116101885750505f61018e565b01600190035b5f"
    "555f6001556074025ff35b5f5ffd"
)
"""EIP-7251 consolidation request queue (mainnet bytecode)."""

SYSTEM_CONTRACTS: tuple[tuple[Address, bytes], ...] = (
    (BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CONTRACT_CODE),
    (HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CONTRACT_CODE),
    (WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, WITHDRAWAL_REQUEST_CONTRACT_CODE),
    (CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_CONTRACT_CODE),
)
"""(address, code) of every system contract a Prague genesis carries."""


def system_contracts_alloc() -> AccountState:
    """Genesis accounts for the system contracts: nonce 1 and no balance, as in geth."""
    return {
        address: AccountDetails(balance=0, nonce=1, code=code, storage={})
        for address, code in SYSTEM_CONTRACTS
    }
