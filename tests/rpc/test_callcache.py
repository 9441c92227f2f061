"""Calls share account reads across states by (state root, address), under each state's own writes.

Slot reads share the same ``cached_read``; they are exercised through real calls in test_execution."""

from __future__ import annotations

from typing import Any

from rpc.cache import LRU
from rpc.callcache import SharedAccountReads

ROOT_A, ROOT_B = b"\xaa" * 32, b"\xbb" * 32
ALICE = b"\x01" * 20


class CountingTrie:
    """A ``HashTrie`` stand-in: a root and one mapping per root; counts reads."""

    def __init__(self, tries: dict[bytes, dict[bytes, bytes]], root: bytes) -> None:
        self.tries = tries
        self.root_hash = root
        self.reads = 0

    def __getitem__(self, key: bytes) -> bytes:
        self.reads += 1
        return self.tries[self.root_hash].get(key, b"")

    def __setitem__(self, key: bytes, value: bytes) -> None:
        new_root = bytes([len(self.tries)]) * 32
        self.tries[new_root] = {**self.tries[self.root_hash], key: value}
        self.root_hash = new_root

    def __contains__(self, key: Any) -> bool:
        return key in self.tries[self.root_hash]


def test_states_at_one_root_read_each_account_from_the_trie_once() -> None:
    tries = {ROOT_A: {ALICE: b"alice@A"}}
    cache: LRU[tuple[bytes, bytes], bytes] = LRU(16)
    first, second = CountingTrie(tries, ROOT_A), CountingTrie(tries, ROOT_A)
    assert SharedAccountReads(first, cache)[ALICE] == b"alice@A"
    assert SharedAccountReads(second, cache)[ALICE] == b"alice@A"
    assert (first.reads, second.reads) == (1, 0)


def test_a_missing_account_is_cached_as_empty() -> None:
    trie = CountingTrie({ROOT_A: {}}, ROOT_A)
    reads = SharedAccountReads(trie, LRU(16))
    assert reads[ALICE] == b"" and reads[ALICE] == b""
    assert trie.reads == 1


def test_a_write_moves_the_state_to_a_new_root_and_never_changes_what_the_old_root_answers() -> None:
    tries = {ROOT_A: {ALICE: b"alice@A"}}
    cache: LRU[tuple[bytes, bytes], bytes] = LRU(16)
    writer = SharedAccountReads(CountingTrie(tries, ROOT_A), cache)
    assert writer[ALICE] == b"alice@A"
    writer[ALICE] = b"overridden"
    assert writer[ALICE] == b"overridden"
    assert SharedAccountReads(CountingTrie(tries, ROOT_A), cache)[ALICE] == b"alice@A"
