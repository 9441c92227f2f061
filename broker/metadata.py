"""A client asks the broker for metadata at most once per retry backoff.

aiokafka's fetcher asks for fresh metadata whenever an assigned partition has
no leader, and asks again as soon as the answer comes. When a topic a worker
reads is missing (the broker lost its log, and the master is not there yet to
create it again), each of a worker's consumers then asked about a thousand
times a second (measured: a replica at 0.31 of a core instead of 0.10, and
aiokafka's "Topic ... not found" line 1,000 times a second). Spacing the
requests by the client's ``retry_backoff_ms`` (100 ms) bounds that to ten a
second and changes nothing else: a client asks rarely otherwise.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka.client import AIOKafkaClient

_original_update = AIOKafkaClient._metadata_update


async def _spaced_update(self: AIOKafkaClient, cluster_metadata: Any, topics: Any) -> Any:
    """aiokafka's metadata update, once ``retry_backoff`` has passed since the client's last one."""
    since = time.time() - cluster_metadata._last_refresh_ms / 1000
    if since < self._retry_backoff:
        await asyncio.sleep(self._retry_backoff - since)
    return await _original_update(self, cluster_metadata, topics)


def space_metadata_requests() -> None:
    """Make every aiokafka client of this process wait ``retry_backoff_ms`` between metadata requests (idempotent)."""
    AIOKafkaClient._metadata_update = _spaced_update  # type: ignore[method-assign]
