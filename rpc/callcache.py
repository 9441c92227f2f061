"""Account reads shared by every call a replica runs: the account trie behind one cache.

py-evm's ``AccountDB`` reads an account by walking the state trie from the root
(decoding a node per level) and caches it only for the life of one state, i.e.
one call. An account at a given state root never changes, so the walk's result
can be kept across calls keyed by (state root, address): the sender, the called
contract and its code hash at the head are read once, not once per call. The
cache sits under py-evm's own journal and write caches, so a call's writes
(state overrides, the sender's nonce and fee) move the trie to new roots and are
never seen by another call; their reads are cached under those roots, which
name exactly that state.
"""

from __future__ import annotations

from typing import Any

from eth.db.accesslog import KeyAccessLoggerDB
from eth.db.backends.base import BaseDB
from eth.db.cache import CacheDB
from eth.db.journal import JournalDB

from rpc.cache import LRU

EncodedAccounts = LRU[tuple[bytes, bytes], bytes]
"""RLP-encoded accounts (b"" for none) by (state root, address)."""


class SharedAccountReads(BaseDB):
    """The account trie (a ``HashTrie``) with reads cached by (its current root, address)."""

    def __init__(self, trie: Any, cache: EncodedAccounts) -> None:
        self._trie = trie
        self._cache = cache

    def __getitem__(self, address: bytes) -> bytes:
        key = (self._trie.root_hash, address)
        found = self._cache.get(key)
        if found is None:
            found = self._cache.put(key, self._trie[address])
        return found

    def __setitem__(self, address: bytes, value: bytes) -> None:
        self._trie[address] = value

    def __delitem__(self, address: bytes) -> None:
        del self._trie[address]

    def _exists(self, address: bytes) -> bool:
        return address in self._trie


def share_account_reads(state: Any, cache: EncodedAccounts) -> None:
    """Put ``cache`` under a fresh state's account journal (before its first read or write).

    Rebuilds the three layers py-evm's ``AccountDB.__init__`` stacks on its trie
    (access logger, read cache, journal) over ``SharedAccountReads``.
    """
    accounts = state._account_db
    accounts._trie_logger = KeyAccessLoggerDB(SharedAccountReads(accounts._trie, cache), log_missing_keys=False)
    accounts._trie_cache = CacheDB(accounts._trie_logger)
    accounts._journaltrie = JournalDB(accounts._trie_cache)
