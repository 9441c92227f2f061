"""Osaka's precompile changes: EIP-7951 P-256 verify, EIP-7823/7883 modexp.

Both follow the execution-specs (``ethereum.forks.osaka.vm.precompiled_contracts``)
line for line in behaviour; the curve arithmetic is the ``cryptography`` package's
(OpenSSL), not ours.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from eth._utils.padding import zpad_right
from eth.abc import ComputationAPI
from eth.exceptions import VMError
from eth.precompiles.modexp import extract_lengths

P256VERIFY_ADDRESS = (0x100).to_bytes(20, "big")
"""EIP-7951: the precompile's address."""

P256VERIFY_GAS = 6900
"""EIP-7951: flat cost of one verification."""

SECP256R1_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
SECP256R1_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_SECP256R1_A = SECP256R1_P - 3
_SECP256R1_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B

MODEXP_MAX_INPUT_BYTES = 1024
"""EIP-7823: longest base, exponent or modulus the precompile accepts."""

MODEXP_MIN_GAS = 500
"""EIP-7883: the least a modexp call costs."""

_VALID = (1).to_bytes(32, "big")


def p256verify(computation: ComputationAPI) -> ComputationAPI:
    """32 bytes of 1 for a valid (hash, r, s, x, y) signature; empty output otherwise."""
    computation.consume_gas(P256VERIFY_GAS, reason="P256VERIFY precompile")
    data = computation.msg.data_as_bytes
    if len(data) == 160 and _p256_valid(data):
        computation.output = _VALID
    return computation


def _p256_valid(data: bytes) -> bool:
    message_hash = data[:32]
    r, s, x, y = (int.from_bytes(data[i : i + 32], "big") for i in range(32, 160, 32))
    if not (0 < r < SECP256R1_N and 0 < s < SECP256R1_N):
        return False
    if x >= SECP256R1_P or y >= SECP256R1_P or (x, y) == (0, 0):
        return False
    if (y * y - x * x * x - _SECP256R1_A * x - _SECP256R1_B) % SECP256R1_P:
        return False
    key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    try:
        key.verify(encode_dss_signature(r, s), message_hash, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def modexp(computation: ComputationAPI) -> ComputationAPI:
    """(base ** exponent) % modulus, bounded inputs (EIP-7823), Osaka's gas (EIP-7883).

    An input over the bound is an exceptional halt: the call's gas is consumed.
    """
    data = computation.msg.data_as_bytes
    base_length, exponent_length, modulus_length = extract_lengths(data)
    if max(base_length, exponent_length, modulus_length) > MODEXP_MAX_INPUT_BYTES:
        raise VMError("modexp input longer than 1024 bytes")
    exponent_start = 96 + base_length
    exponent_head = int.from_bytes(
        _read(data, exponent_start, min(32, exponent_length)), "big"
    )
    computation.consume_gas(
        modexp_gas(base_length, exponent_length, modulus_length, exponent_head),
        reason="MODEXP precompile",
    )
    if base_length == 0 and modulus_length == 0:
        return computation
    base = int.from_bytes(_read(data, 96, base_length), "big")
    exponent = int.from_bytes(_read(data, exponent_start, exponent_length), "big")
    modulus = int.from_bytes(_read(data, exponent_start + exponent_length, modulus_length), "big")
    result = 0 if modulus == 0 else pow(base, exponent, modulus)
    computation.output = result.to_bytes(modulus_length, "big")
    return computation


def modexp_gas(base_length: int, exponent_length: int, modulus_length: int, exponent_head: int) -> int:
    """EIP-7883: doubled word cost above 32 bytes, 16 iterations per exponent byte past 32."""
    longest = max(base_length, modulus_length)
    complexity = 16 if longest <= 32 else 2 * ((longest + 7) // 8) ** 2
    head_bits = max(exponent_head.bit_length() - 1, 0)
    if exponent_length <= 32:
        iterations = head_bits
    else:
        iterations = 16 * (exponent_length - 32) + head_bits
    return max(MODEXP_MIN_GAS, complexity * max(iterations, 1))


def _read(data: bytes, start: int, length: int) -> bytes:
    """``length`` bytes from ``start``, zero-padded past the end of ``data``."""
    return zpad_right(data[start : start + length], to_size=length)
