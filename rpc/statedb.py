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
from eth_utils import keccak
from trie.exceptions import MissingTrieNode
from trie.utils.nibbles import decode_nibbles, is_nibbles_terminated

from eth.abc import DatabaseAPI
from eth_typing import Hash32

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


NIBBLES = tuple((byte >> 4, byte & 0x0F) for byte in range(256))


def key_nibbles(key: bytes) -> tuple[int, ...]:
    return tuple(nibble for byte in key for nibble in NIBBLES[byte])


class TrieNodes:
    """Trie lookups over decoded nodes kept by hash: what ``HexaryTrie(db, root)[key]`` answers.

    py-trie decodes every node on the way to a key each time, in pure Python: an account
    of a 3,000-account state cost 187 us, of which its 4.6 LevelDB reads were 10. A node is
    stored under the keccak of its encoding, so a hash names one node for good and nothing
    here is ever invalidated; the nodes near a root are on every path and are decoded once.
    A decoded branch node holds about 1.3 KB: the default ``size`` keeps about 11 MB (the
    top three levels of mainnet's state trie are 4,369 nodes). Like the other caches keyed by
    roots, it serves any database holding the replica's tries.
    """

    def __init__(self, size: int = 8192) -> None:
        self.decoded: LRU[bytes, Any] = LRU(size)
        """Prepared nodes (``_prepared``) by hash."""

    def value(self, db: DatabaseAPI, root: bytes, key: bytes) -> bytes:
        """The value at ``key`` in the trie of ``db`` with root ``root`` (b"" when there is none)."""
        if root == BLANK_ROOT_HASH:
            return b""
        path, at = key_nibbles(key), 0
        node = self._node(db, root, root, key)
        while True:
            ends, found, at = _step(node, path, at)
            if ends or not found:
                return bytes(found) if ends else b""
            node = _prepared(found) if isinstance(found, list) else self._node(db, found, root, key)

    def _node(self, db: DatabaseAPI, node_hash: bytes, root: bytes, key: bytes) -> Any:
        node = self.decoded.get(node_hash)
        if node is None:
            try:
                encoded = db[node_hash]
            except KeyError:
                raise MissingTrieNode(Hash32(node_hash), Hash32(root), key) from None
            node = self.decoded.put(node_hash, _prepared(rlp.decode(encoded)))
        return node


def _step(node: Any, path: tuple[int, ...], at: int) -> tuple[bool, Any, int]:
    """Follow one prepared node along ``path`` from nibble ``at``: (whether the walk ends here, the
    value found where it ends (b"": none) or else the child to go to (b"": none), the next nibble)."""
    if len(node) == 17:
        if at == len(path):
            return True, node[16], at
        return False, node[path[at]], at + 1
    segment, leaf, held = node
    if path[at:at + len(segment)] != segment:
        return True, b"", at  # the path leaves the trie here
    at += len(segment)
    if leaf:
        return True, held if at == len(path) else b"", at
    return False, held, at


def _prepared(node: list[Any]) -> Any:
    """A decoded node ready to walk: a branch as it is (17 items); a leaf or an extension as
    (its path's nibbles, whether it is a leaf, its value or child), its hex prefix decoded once."""
    if len(node) == 17:
        return node
    nibbles = decode_nibbles(node[0])
    leaf = is_nibbles_terminated(nibbles)
    return (tuple(nibbles[:-1]) if leaf else tuple(nibbles), leaf, node[1])


def decode_account(encoded: bytes) -> AccountState:
    """An account as the state trie stores it (RLP of nonce, balance, storage root, code hash),
    decoded without py-evm's ``Account`` sedes (6 us against 23)."""
    if not encoded:
        return MISSING
    nonce, balance, storage_root, code_hash = rlp.decode(encoded)
    return AccountState(True, int.from_bytes(nonce, "big"), int.from_bytes(balance, "big"), storage_root, code_hash)


def read_account(db: DatabaseAPI, state_root: bytes, address: bytes, nodes: TrieNodes) -> AccountState:
    """The account at ``address`` in the state with root ``state_root``."""
    return decode_account(nodes.value(db, state_root, keccak(address)))


def read_code(db: DatabaseAPI, account: AccountState) -> bytes:
    if account.code_hash == EMPTY_SHA3:
        return b""
    return db[account.code_hash]


def read_storage(db: DatabaseAPI, account: AccountState, slot: int, nodes: TrieNodes) -> int:
    """The value in a storage slot (zero when unset)."""
    if account.storage_root == BLANK_ROOT_HASH:
        return 0
    encoded = nodes.value(db, account.storage_root, keccak(slot.to_bytes(32, "big")))
    return rlp.decode(encoded, sedes=rlp.sedes.big_endian_int) if encoded else 0


def prove(db: DatabaseAPI, root: bytes, key: bytes) -> list[bytes]:
    """geth's ``Trie.Prove`` for the secure-trie key ``keccak(key)``.

    Returns the RLP encodings along the path to the key (or to where it would be),
    the root first, leaving out nodes embedded in their parent (under 32 bytes).
    """
    if root == BLANK_ROOT_HASH:
        return []
    path, at = key_nibbles(keccak(key)), 0
    encoded = db[root]
    proof = [encoded]
    node = _prepared(rlp.decode(encoded))
    while True:
        ends, child, at = _step(node, path, at)
        if ends or not child:
            return proof
        if isinstance(child, list):
            node = _prepared(child)  # embedded: already in its parent's encoding
            continue
        encoded = db[child]
        proof.append(encoded)
        node = _prepared(rlp.decode(encoded))


class CachedState:
    """The reads above behind LRU caches keyed by what makes them immutable.

    An account is fixed by (state root, address), a slot by (storage root, slot),
    code by its hash; so nothing here is ever invalidated, and the accounts and
    slots clients poll at the head cost one dict lookup after the first read.
    """

    def __init__(self, db: DatabaseAPI, nodes: TrieNodes, size: int = 16384) -> None:
        self.db = db
        self.nodes = nodes
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
            cached = self._accounts.put(key, read_account(self.db, state_root, address, self.nodes))
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
            cached = self._slots.put(key, read_storage(self.db, account, slot, self.nodes))
        return cached
