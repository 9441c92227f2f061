"""Reading accounts, storage, code and Merkle proofs straight from the state trie.

The state methods need a few trie lookups each. Building py-evm's ``AccountDB`` for
them would log every key read (it records witnesses) and keep journals, which a
long-lived cached instance would grow without bound; these functions read the trie
directly, allocate nothing that outlives the call, and walk proofs the way geth's
``Trie.Prove`` does (nodes referenced by hash, plus the root; embedded nodes are
part of their parent's encoding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth_utils import keccak
from trie import HexaryTrie
from trie.utils.nibbles import bytes_to_nibbles, decode_nibbles, is_nibbles_terminated

from eth.abc import DatabaseAPI

from rpc.cache import LRU


@dataclass(frozen=True)
class AccountState:
    """An account as the trie holds it, plus whether it exists at all."""

    exists: bool
    nonce: int
    balance: int
    storage_root: bytes
    code_hash: bytes


MISSING = AccountState(False, 0, 0, BLANK_ROOT_HASH, EMPTY_SHA3)


def read_account(db: DatabaseAPI, state_root: bytes, address: bytes) -> AccountState:
    """The account at ``address`` in the state with root ``state_root``."""
    encoded = HexaryTrie(db, state_root)[keccak(address)]
    if not encoded:
        return MISSING
    account = rlp.decode(encoded, sedes=Account)
    return AccountState(True, account.nonce, account.balance, account.storage_root, account.code_hash)


def read_code(db: DatabaseAPI, account: AccountState) -> bytes:
    if account.code_hash == EMPTY_SHA3:
        return b""
    return db[account.code_hash]


def read_storage(db: DatabaseAPI, account: AccountState, slot: int) -> int:
    """The value in a storage slot (zero when unset)."""
    if account.storage_root == BLANK_ROOT_HASH:
        return 0
    encoded = HexaryTrie(db, account.storage_root)[keccak(slot.to_bytes(32, "big"))]
    return rlp.decode(encoded, sedes=rlp.sedes.big_endian_int) if encoded else 0


def prove(db: DatabaseAPI, root: bytes, key: bytes) -> list[bytes]:
    """geth's ``Trie.Prove`` for the secure-trie key ``keccak(key)``.

    Returns the RLP encodings along the path to the key (or to where it would be),
    the root first, leaving out nodes embedded in their parent (under 32 bytes).
    """
    if root == BLANK_ROOT_HASH:
        return []
    path = bytes_to_nibbles(keccak(key))
    encoded = db[root]
    proof = [encoded]
    node: Any = rlp.decode(encoded)
    while True:
        child, path = _step(node, path)
        if child is None or child == b"":
            return proof
        if isinstance(child, list):
            node = child  # embedded: already in its parent's encoding
            continue
        encoded = db[child]
        proof.append(encoded)
        node = rlp.decode(encoded)


def _step(node: Any, path: tuple[int, ...]) -> tuple[Any, tuple[int, ...]]:
    """Follow one node along ``path``: (child reference or None, remaining path)."""
    if len(node) == 17:
        if not path:
            return None, path
        return node[path[0]], path[1:]
    if len(node) == 2:
        key = decode_nibbles(node[0])
        if is_nibbles_terminated(key) or tuple(path[:len(key)]) != tuple(key):
            return None, path  # a leaf, or a path that leaves the trie here
        return node[1], path[len(key):]
    return None, path


class CachedState:
    """The reads above behind LRU caches keyed by what makes them immutable.

    An account is fixed by (state root, address), a slot by (storage root, slot),
    code by its hash; so nothing here is ever invalidated, and the accounts and
    slots clients poll at the head cost one dict lookup after the first read.
    """

    def __init__(self, db: DatabaseAPI, size: int = 16384) -> None:
        self.db = db
        self._accounts: LRU[tuple[bytes, bytes], AccountState] = LRU(size)
        self._slots: LRU[tuple[bytes, int], int] = LRU(size)
        self._code: LRU[bytes, bytes] = LRU(1024)

    def caches(self) -> dict[str, LRU[Any, Any]]:
        """Each cache by name, for the gauges that show them against their sizes."""
        return {"state accounts": self._accounts, "state slots": self._slots, "state code": self._code}

    def account(self, state_root: bytes, address: bytes) -> AccountState:
        key = (state_root, address)
        cached = self._accounts.get(key)
        if cached is None:
            cached = self._accounts.put(key, read_account(self.db, state_root, address))
        return cached

    def code(self, account: AccountState) -> bytes:
        cached = self._code.get(account.code_hash)
        if cached is None:
            cached = self._code.put(account.code_hash, read_code(self.db, account))
        return cached

    def storage(self, account: AccountState, slot: int) -> int:
        key = (account.storage_root, slot)
        cached = self._slots.get(key)
        if cached is None:
            cached = self._slots.put(key, read_storage(self.db, account, slot))
        return cached
