"""Account state at a block: balance, code, storage, nonce and EIP-1186 proofs."""

from __future__ import annotations

import re

from eth.abc import BlockHeaderAPI

from rpc import params as p
from rpc.backend import ReplicaBackend
from rpc.dispatch import Method, MethodTable
from rpc.errors import INVALID_PARAMS, RpcError, ServerError
from rpc.format import JSON, data, quantity
from rpc.blockref import LATEST, BlockRef, BlockTag, block_ref
from rpc.statedb import AccountState, prove

_HEX = re.compile(r"[0-9a-fA-F]*")


def decode_storage_key(text: str) -> tuple[bytes, int]:
    """geth's ``decodeHash``: up to 32 bytes of hex, 0x optional, odd length padded.

    Returns the key left-padded to 32 bytes and the number of bytes given (eth_getProof
    echoes short keys as quantities, 32-byte ones as hashes). Raises ``ValueError`` with
    geth's words (1.16).
    """
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    if len(digits) % 2:
        digits = "0" + digits
    if not _HEX.fullmatch(digits):
        raise ValueError("invalid hex in storage key")
    raw = bytes.fromhex(digits)
    if len(raw) > 32:
        raise ValueError("storage key too long (want at most 32 bytes)")
    return raw.rjust(32, b"\x00"), len(raw)


def _account(backend: ReplicaBackend, address: bytes, ref: BlockRef) -> tuple[BlockHeaderAPI, AccountState]:
    header = backend.resolve_ref(ref)
    return header, backend.state.account(header.state_root, address)


def eth_get_balance(backend: ReplicaBackend, address: bytes, ref: BlockRef) -> str:
    return quantity(_account(backend, address, ref)[1].balance)


async def eth_get_transaction_count(backend: ReplicaBackend, address: bytes, ref: BlockRef) -> str:
    """The state nonce; for "pending", moved past the cluster's pending transactions (as geth's pool),
    after the view caught up with what the cluster acknowledged before this call."""
    if ref.number is BlockTag.PENDING:
        await backend.pending.sync()
    nonce = _account(backend, address, ref)[1].nonce
    if ref.number is BlockTag.PENDING:
        nonce = backend.pending.next_nonce(address, nonce)
    return quantity(nonce)


def eth_get_code(backend: ReplicaBackend, address: bytes, ref: BlockRef) -> str:
    """The account's code; for an EIP-7702 account, its delegation designator."""
    return data(backend.state.code(_account(backend, address, ref)[1]))


def eth_get_storage_at(backend: ReplicaBackend, address: bytes, key: str, ref: BlockRef) -> str:
    _, account = _account(backend, address, ref)
    try:
        slot, _ = decode_storage_key(key)
    except ValueError as error:
        raise RpcError(f"{error}: {p.go_quote(key)}", code=INVALID_PARAMS) from None
    return data(backend.state.storage(account, int.from_bytes(slot, "big")).to_bytes(32, "big"))


def eth_get_proof(backend: ReplicaBackend, address: bytes, keys: list[str] | None,
                  ref: BlockRef) -> JSON:
    """EIP-1186 account and storage proofs, shaped as geth's ``AccountResult``."""
    try:
        decoded = [decode_storage_key(key) for key in keys or ()]
    except ValueError as error:
        raise ServerError(str(error)) from None
    header, account = _account(backend, address, ref)
    storage_proof = [_storage_result(backend, account, slot, given) for slot, given in decoded]
    return {
        "address": data(address),
        "accountProof": [data(node) for node in prove(backend.db, header.state_root, address)],
        "balance": quantity(account.balance),
        # geth reports zero hashes for an account that does not exist.
        "codeHash": data(account.code_hash if account.exists else bytes(32)),
        "nonce": quantity(account.nonce),
        "storageHash": data(account.storage_root if account.exists else bytes(32)),
        "storageProof": storage_proof,
    }


def _storage_result(backend: ReplicaBackend, account: AccountState, slot: bytes, given: int) -> JSON:
    """One storage proof; the key echoes as given: a hash if 32 bytes, else a quantity."""
    key = data(slot) if given == 32 else quantity(int.from_bytes(slot, "big"))
    value = backend.state.storage(account, int.from_bytes(slot, "big"))
    return {
        "key": key,
        "value": quantity(value),
        "proof": [data(node) for node in prove(backend.db, account.storage_root, slot)],
    }


ADDRESS = p.required(p.address)
BLOCK_REF = p.Param(block_ref, optional=True, default=LATEST)
"""geth 1.16: the block may be left out and then means "latest"."""

METHODS: MethodTable = {
    "eth_getBalance": Method(eth_get_balance, (ADDRESS, BLOCK_REF)),
    "eth_getTransactionCount": Method(eth_get_transaction_count, (ADDRESS, BLOCK_REF)),
    "eth_getCode": Method(eth_get_code, (ADDRESS, BLOCK_REF)),
    "eth_getStorageAt": Method(eth_get_storage_at, (ADDRESS, p.required(p.string), BLOCK_REF)),
    "eth_getProof": Method(eth_get_proof, (ADDRESS, p.required(p.list_of(p.string, "[]string")), BLOCK_REF)),
}
