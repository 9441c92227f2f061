"""EIP-7910 ``eth_config``: the rules the chain runs now, next and last.

Answered from the chain configuration the master stored (so replicas and the master
agree): each of ``current``, ``next`` (the first configured time fork after the
head) and ``last`` (the last configured fork; null with ``next`` when none is to
come) names its activation time, blob schedule, chain id, EIP-2124 fork id, the
precompiles by geth's names and the system contracts.
"""

from __future__ import annotations

from typing import Any

from eth.abc import BlockHeaderAPI
from eth.vm.forks.cancun.constants import BEACON_ROOTS_ADDRESS
from eth.vm.forks.prague.constants import (
    CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    HISTORY_STORAGE_ADDRESS,
    WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
)

from chain.config import FORK_NAMES, FORK_VMS, ChainConfig, fork_vm, read_config
from chain.forkid import fork_id
from rpc.backend import ReplicaBackend
from rpc.dispatch import Method, MethodTable
from rpc.format import data, quantity

PRECOMPILE_NAMES: dict[int, str] = {
    0x01: "ECREC", 0x02: "SHA256", 0x03: "RIPEMD160", 0x04: "ID", 0x05: "MODEXP",
    0x06: "BN254_ADD", 0x07: "BN254_MUL", 0x08: "BN254_PAIRING", 0x09: "BLAKE2F",
    0x0A: "KZG_POINT_EVALUATION", 0x0B: "BLS12_G1ADD", 0x0C: "BLS12_G1MSM",
    0x0D: "BLS12_G2ADD", 0x0E: "BLS12_G2MSM", 0x0F: "BLS12_PAIRING_CHECK",
    0x10: "BLS12_MAP_FP_TO_G1", 0x11: "BLS12_MAP_FP2_TO_G2", 0x100: "P256VERIFY",
}
"""geth's precompile names (``vm.PrecompiledContract.Name``) by address."""


def eth_config(backend: ReplicaBackend) -> dict[str, Any]:
    config = read_config(backend.db)
    genesis = backend.header_by_number(0)
    head = backend.head()
    assert genesis is not None  # a ready replica holds its genesis
    current = config.fork_at(head.block_number)
    # A fork ethercattle does not implement (amsterdam ...) has no rules to describe;
    # the import refuses it once reached.
    coming = [(name, time) for name, time in config.fork_times
              if time > head.timestamp and name in FORK_VMS]
    current_time = next((time for name, time in config.fork_times if name == current), 0)
    next_fork = last_fork = None
    if coming:
        next_fork = _fork(backend, config, genesis, *coming[0])
        last_fork = _fork(backend, config, genesis, *coming[-1])
    return {
        "current": _fork(backend, config, genesis, current, current_time),
        "next": next_fork,
        "last": last_fork,
    }


def _fork(
    backend: ReplicaBackend, config: ChainConfig, genesis: BlockHeaderAPI, name: str, time: int
) -> dict[str, Any]:
    """One fork's entry, as a node whose head is at ``time`` would report it."""
    vm_class = fork_vm(config, name)
    precompiles = vm_class.get_state_class().computation_class.get_precompiles()
    has_blobs = FORK_NAMES.index(name) >= FORK_NAMES.index("cancun")
    blobs = config.blob_parameters(name) if has_blobs else None
    return {
        "activationTime": time,
        "blobSchedule": None if blobs is None else {
            "target": blobs.target,
            "max": blobs.max,
            "baseFeeUpdateFraction": blobs.base_fee_update_fraction,
        },
        "chainId": quantity(config.chain_id),
        "forkId": data(fork_id(config, genesis.hash, genesis.timestamp, time)),
        "precompiles": {
            PRECOMPILE_NAMES[number]: data(address)
            for address in precompiles
            if (number := int.from_bytes(address, "big")) in PRECOMPILE_NAMES
        },
        "systemContracts": _system_contracts(config, name),
    }


def _system_contracts(config: ChainConfig, name: str) -> dict[str, str]:
    """geth's ``ActiveSystemContracts``: Cancun's beacon roots, Prague's four more."""
    rank = FORK_NAMES.index(name)
    contracts: dict[str, bytes] = {}
    if rank >= FORK_NAMES.index("cancun"):
        contracts["BEACON_ROOTS_ADDRESS"] = BEACON_ROOTS_ADDRESS
    if rank >= FORK_NAMES.index("prague"):
        contracts["CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS"] = CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS
        contracts["DEPOSIT_CONTRACT_ADDRESS"] = config.deposit_contract
        contracts["HISTORY_STORAGE_ADDRESS"] = HISTORY_STORAGE_ADDRESS
        contracts["WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS"] = WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS
    return {key: data(address) for key, address in contracts.items()}


METHODS: MethodTable = {"eth_config": Method(eth_config)}
