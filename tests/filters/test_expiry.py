"""Idle filters are tombstoned by any replica, and a broker that stops answering cannot stall that."""

from __future__ import annotations

import asyncio
import time

import pytest

from filters.store import FilterStore
from tests.filters.test_methods import Clock, store_with_log


def test_filters_idle_past_the_timeout_are_tombstoned_and_the_rest_kept() -> None:
    clock = Clock()
    store, published = store_with_log(clock)
    store.apply("idle", {"kind": "block", "touched": clock.now - 301})
    store.apply("polled", {"kind": "block", "touched": clock.now - 10})

    assert asyncio.run(store.expire(300, ack_timeout=1)) == 1

    assert published == [("idle", None)]
    assert store.get("idle") is None and store.get("polled") is not None


def test_a_tombstone_the_broker_never_acknowledges_times_out_and_releases_the_filter() -> None:
    store = FilterStore(Clock())
    store.loaded = True

    async def never_acknowledged(filter_id: str, value: object) -> None:
        await asyncio.Event().wait()

    store.publisher = never_acknowledged
    store.apply("idle", {"kind": "block", "touched": 0})

    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(store.expire(300, ack_timeout=0.05))

    assert time.monotonic() - started < 1
    assert store.locks_in_use == 0
    assert store.get("idle") is not None  # still idle: the next round tries again
