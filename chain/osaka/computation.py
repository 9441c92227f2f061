"""Osaka's EVM: Prague's opcodes plus EIP-7939 CLZ, Prague's precompiles plus Osaka's."""

from __future__ import annotations

from typing import Any, Callable

from eth import constants
from eth.abc import ComputationAPI, OpcodeAPI
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.opcodes import PRAGUE_OPCODES
from eth.vm.opcode import as_opcode
from eth_typing import Address

from chain.osaka.precompiles import P256VERIFY_ADDRESS, modexp, p256verify

CLZ = 0x1E
"""EIP-7939: count leading zeros, the opcode value."""

MODEXP_ADDRESS = Address((0x05).to_bytes(20, "big"))


def count_leading_zeros(computation: ComputationAPI) -> None:
    """CLZ: the number of leading zero bits of the top word (256 for zero)."""
    value = computation.stack_pop1_int()
    computation.stack_push_int(256 - value.bit_length())


OSAKA_OPCODES: dict[int, OpcodeAPI] = {
    **PRAGUE_OPCODES,
    CLZ: as_opcode(logic_fn=count_leading_zeros, mnemonic="CLZ", gas_cost=constants.GAS_LOW),
}

OSAKA_PRECOMPILES: dict[Address, Callable[[ComputationAPI], Any]] = {
    **PragueComputation.get_precompiles(),
    MODEXP_ADDRESS: modexp,
    Address(P256VERIFY_ADDRESS): p256verify,
}


class OsakaComputation(PragueComputation):
    """Execution rules of Osaka and every blob-parameter-only fork after it."""

    opcodes = OSAKA_OPCODES
    _precompiles = OSAKA_PRECOMPILES
