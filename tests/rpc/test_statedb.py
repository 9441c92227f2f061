"""Trie lookups over decoded nodes kept by hash answer what py-trie answers, and read each node once."""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth.constants import BLANK_ROOT_HASH
from eth.db.atomic import AtomicDB
from eth_utils import keccak
from trie import HexaryTrie
from trie.exceptions import MissingTrieNode

from rpc.statedb import TrieNodes


class CountingDB(dict[bytes, bytes]):
    """A key-value store that counts the reads it answers."""

    reads = 0

    def __getitem__(self, key: bytes) -> bytes:
        self.reads += 1
        return super().__getitem__(key)


def random_trie(seed: int, db: Any = None) -> tuple[Any, HexaryTrie, list[bytes]]:
    """A trie of hashed keys (as the state and storage tries use) and a few short ones, whose
    values range from a byte (nodes embedded in their parent) to a hundred."""
    rnd = random.Random(seed)
    db = AtomicDB() if db is None else db
    trie = HexaryTrie(db)
    keys = [keccak(rnd.randbytes(8)) if rnd.random() < 0.8 else rnd.randbytes(rnd.randint(1, 4))
            for _ in range(rnd.randint(1, 300))]
    for key in keys:
        trie[key] = rnd.randbytes(rnd.choice([1, 2, 5, 40, 100]))
    return db, trie, keys


@pytest.mark.parametrize("seed", range(40))
def test_every_key_and_every_missing_one_reads_as_py_trie_reads_it(seed: int) -> None:
    db, trie, keys = random_trie(seed)
    nodes = TrieNodes(size=50)  # smaller than most tries here: nodes leave and come back
    absent = [keccak(key) for key in keys] + [key[:-1] + bytes([key[-1] ^ 1]) for key in keys]
    for key in keys + absent:
        assert nodes.value(db, trie.root_hash, key) == trie[key]


def test_an_empty_trie_holds_nothing() -> None:
    assert TrieNodes().value(AtomicDB(), BLANK_ROOT_HASH, keccak(b"x")) == b""


def test_a_node_is_read_from_the_database_once() -> None:
    counting, trie, keys = random_trie(1, CountingDB())
    expected = [trie[key] for key in keys]
    counting.reads = 0
    nodes = TrieNodes()
    assert [nodes.value(counting, trie.root_hash, key) for key in keys] == expected
    first_pass = counting.reads
    assert [nodes.value(counting, trie.root_hash, key) for key in keys] == expected
    assert first_pass > 0 and counting.reads == first_pass


def test_a_node_missing_from_the_database_is_named() -> None:
    db, trie, keys = random_trie(2)
    del db[trie.root_hash]
    with pytest.raises(MissingTrieNode) as missing:
        TrieNodes().value(db, trie.root_hash, keys[0])
    assert missing.value.missing_node_hash == trie.root_hash
