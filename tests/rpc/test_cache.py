"""The LRU behind the RPC's caches holds at most its size, whatever keys clients make up."""

from __future__ import annotations

from eth.db.atomic import AtomicDB

from rpc.backend import ReplicaBackend
from rpc.cache import LRU


def test_an_lru_holds_at_most_its_size() -> None:
    cache: LRU[int, int] = LRU(100)
    for n in range(10_000):
        cache.put(n, n)
    assert len(cache) == 100


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("old", 1)
    cache.put("recent", 2)
    assert cache.get("old") == 1  # used: now the most recent
    cache.put("new", 3)
    assert cache.get("recent") is None and cache.get("old") == 1 and cache.get("new") == 3


def test_every_cache_of_the_backend_is_an_lru_of_a_named_size() -> None:
    sizes = {name: cache.size for name, cache in ReplicaBackend(AtomicDB()).caches().items()}
    assert sizes == {"decoded blocks": 256, "decoded headers": 4096, "derived values": 256, "state accounts": 16384,
                     "state slots": 16384, "state code": 1024, "call accounts": 16384, "call slots": 65536,
                     "call account states": 16384, "call code": 1024, "trie nodes": 8192}
