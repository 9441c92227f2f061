"""State reads shared by every call a replica runs: accounts and storage slots behind one cache.

py-evm's ``AccountDB`` reads an account by walking the state trie from the root
(decoding a node per level), and a storage slot by walking the account's storage
trie; it caches what it read only for the life of one state, i.e. one call. An
account at a given state root never changes, nor does a slot at a given storage
root, so the walks' results can be kept across calls keyed by (root, key): the
sender, the called contract, its code hash and the slots it reads at the head are
walked once, not once per call. The caches sit under py-evm's own journal and
write caches, so a call's writes (state overrides, the sender's nonce and fee,
SSTORE) move its tries to new roots and are never seen by another call; reads
after them are cached under those roots, which name exactly that state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth.db.accesslog import KeyAccessLoggerDB
from eth.db.backends.base import BaseDB
from eth.db.cache import CacheDB
from eth.db.journal import JournalDB
from eth.db.storage import AccountStorageDB, StorageLookup
from eth.typing import Address

from rpc.cache import LRU
from rpc.statedb import AccountState, TrieNodes


@dataclass
class SharedReads:
    """What calls read from the replica's tries, by (root, key): RLP bytes, b"" for nothing there."""

    accounts: LRU[tuple[bytes, bytes], bytes] = field(default_factory=lambda: LRU(16384))
    """Encoded accounts by (state root, address)."""
    slots: LRU[tuple[bytes, bytes], bytes] = field(default_factory=lambda: LRU(65536))
    """Encoded storage values by (storage root, slot key as py-evm passes it)."""
    account_states: LRU[tuple[bytes, bytes], AccountState] = field(default_factory=lambda: LRU(16384))
    """Decoded accounts by (state root, address), as a throwaway call reads them (``rpc.callstate``):
    decoding an account's RLP costs 7 us, several times the lookup."""
    code: LRU[bytes, bytes] = field(default_factory=lambda: LRU(1024))
    """Contract code by its hash, up to ``MAX_SHARED_CODE`` bytes each (so at most 24 MiB)."""
    nodes: TrieNodes = field(default_factory=TrieNodes)
    """The tries' decoded nodes the reads above walk (shared with the state methods' reads)."""

    def clear(self) -> None:
        """Empty every cache (benchmarks measure calls without them)."""
        self.accounts.clear()
        self.account_states.clear()
        self.slots.clear()
        self.code.clear()
        self.nodes.decoded.clear()


MAX_SHARED_CODE = 24_576
"""EIP-170's limit on deployed code: larger code (a state override's) is read each time, never kept."""


def cached_read(cache: LRU[tuple[bytes, bytes], bytes], root: bytes, key: bytes, read: Any) -> bytes:
    found = cache.get((root, key))
    if found is None:
        found = cache.put((root, key), read(key))
    return found


class SharedAccountReads(BaseDB):
    """The account trie (a ``HashTrie``) with reads cached by (its current root, address)."""

    def __init__(self, trie: Any, cache: LRU[tuple[bytes, bytes], bytes]) -> None:
        self._trie = trie
        self._cache = cache

    def __getitem__(self, address: bytes) -> bytes:
        return cached_read(self._cache, self._trie.root_hash, address, self._trie.__getitem__)

    def __setitem__(self, address: bytes, value: bytes) -> None:
        self._trie[address] = value

    def __delitem__(self, address: bytes) -> None:
        del self._trie[address]

    def _exists(self, address: bytes) -> bool:
        return address in self._trie


class SharedSlotReads(StorageLookup):
    """py-evm's storage lookup with reads cached by (the root it reads at, slot)."""

    def __init__(self, db: Any, storage_root: bytes, address: Address, cache: LRU[tuple[bytes, bytes], bytes]) -> None:
        super().__init__(db, storage_root, address)  # type: ignore[arg-type]
        self._cache = cache

    def __getitem__(self, key: bytes) -> bytes:
        root = self._starting_root_hash if self._write_trie is None else self._write_trie.root_hash
        return cached_read(self._cache, root, key, super().__getitem__)


def share_reads(state: Any, reads: SharedReads) -> None:
    """Put ``reads`` under a fresh state's account and storage journals (before its first read or write).

    Rebuilds the layers py-evm's ``AccountDB`` and ``AccountStorageDB`` stack on
    their tries (access logger, read cache, journals) over the shared readers.
    """
    accounts = state._account_db
    accounts._trie_logger = KeyAccessLoggerDB(SharedAccountReads(accounts._trie, reads.accounts), log_missing_keys=False)
    accounts._trie_cache = CacheDB(accounts._trie_logger)
    accounts._journaltrie = JournalDB(accounts._trie_cache)

    def address_store(address: Address) -> AccountStorageDB:
        store = accounts._account_stores.get(address)
        if store is None:
            store = AccountStorageDB(accounts._raw_store_db, accounts._get_storage_root(address), address)
            store._storage_lookup = SharedSlotReads(accounts._raw_store_db, store._storage_lookup._starting_root_hash,
                                                    address, reads.slots)
            store._storage_cache = CacheDB(store._storage_lookup)
            store._locked_changes = JournalDB(store._storage_cache)
            store._journal_storage = JournalDB(store._locked_changes)
            accounts._account_stores[address] = store
        return store

    accounts._get_address_store = address_store
