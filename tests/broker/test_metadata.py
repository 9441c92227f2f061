"""A client's metadata requests are spaced by its retry backoff, so a missing topic cannot make it spin."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from broker import metadata


def client_and_cluster(backoff: float, last_refresh: float) -> tuple[Any, Any]:
    return SimpleNamespace(_retry_backoff=backoff), SimpleNamespace(_last_refresh_ms=last_refresh * 1000)


async def asked_after(monkeypatch: pytest.MonkeyPatch, backoff: float, last_refresh: float) -> float:
    """Seconds from the call until the request is sent."""
    sent: list[float] = []

    async def send(client: Any, cluster: Any, topics: Any) -> bool:
        sent.append(time.monotonic())
        return True

    monkeypatch.setattr(metadata, "_original_update", send)
    client, cluster = client_and_cluster(backoff, last_refresh)
    started = time.monotonic()
    assert await metadata._spaced_update(client, cluster, {"t"}) is True
    return sent[0] - started


async def test_a_request_right_after_the_last_waits_out_the_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    assert 0.08 <= await asked_after(monkeypatch, 0.1, time.time()) < 0.5


async def test_a_request_long_after_the_last_is_sent_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    assert await asked_after(monkeypatch, 0.1, time.time() - 60) < 0.05
