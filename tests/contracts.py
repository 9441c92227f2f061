"""A hand-assembled contract for end-to-end tests (no compiler needed).

``Store``: with 32 bytes of calldata it stores them in slot 0 and emits
``Stored(bytes32)`` (topic ``STORED_TOPIC``, data the value); with other
non-empty calldata it returns slot 0; with no calldata it reverts with the data
``b"nope"``.
"""

from __future__ import annotations

from eth_utils import keccak

STORED_TOPIC = keccak(b"Stored(bytes32)")
REVERT_DATA = b"nope"


def _assemble(program: list[str | bytes]) -> bytes:
    """Opcodes as hex strings, ``label:`` markers and ``@label`` one-byte jump targets."""
    labels: dict[str, int] = {}
    size = 0
    for item in program:
        if isinstance(item, str) and item.endswith(":"):
            labels[item[:-1]] = size
        elif isinstance(item, str) and item.startswith("@"):
            size += 1
        else:
            size += len(bytes.fromhex(item) if isinstance(item, str) else item)
    code = b""
    for item in program:
        if isinstance(item, str) and item.endswith(":"):
            continue
        if isinstance(item, str) and item.startswith("@"):
            code += bytes([labels[item[1:]]])
        else:
            code += bytes.fromhex(item) if isinstance(item, str) else item
    return code


STORE_RUNTIME = _assemble([
    "36", "15", "60", "@revert", "57",            # no calldata: revert
    "36", "6020", "14", "60", "@set", "57",       # 32 bytes: set
    "600054", "600052", "60206000f3",             # otherwise: return slot 0
    "set:", "5b", "600035", "80", "600055", "600052",
    "7f", STORED_TOPIC, "6020", "6000", "a1", "00",  # LOG1(0, 32, topic)
    "revert:", "5b", "63", REVERT_DATA, "60e01b", "600052", "60046000fd",
])


def init_code(runtime: bytes) -> bytes:
    """Constructor that returns ``runtime`` as the deployed code."""
    prefix_size = 11
    return bytes([0x60, len(runtime), 0x80, 0x60, prefix_size, 0x60, 0x00, 0x39, 0x60, 0x00, 0xF3]) + runtime


STORE_INIT = init_code(STORE_RUNTIME)
