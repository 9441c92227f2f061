"""No broker ever creates one of our topics on its own.

A Kafka client asks for a topic's metadata before it produces or consumes,
and aiokafka always lets the broker create a missing topic on that request,
with the broker's default partition count (Tansu: 4). After a broker lost its
log, the master's next publish then made a CDC topic of four partitions that
no replica accepts. With ``forbid_topic_auto_creation`` installed, a missing
topic stays missing (the client sees ``UnknownTopicOrPartitionError``) until
``ensure_topics`` creates it with the partition count the design needs.
"""

from __future__ import annotations

import aiokafka.client
from aiokafka.protocol.metadata import MetadataRequest


class _NeverAutoCreate(MetadataRequest):
    """A metadata request that never asks the broker to create the topics it names."""

    def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = None) -> None:
        super().__init__(topics, allow_auto_topic_creation=False)


def forbid_topic_auto_creation() -> None:
    """Make every aiokafka client of this process ask for metadata without auto-creation (idempotent)."""
    aiokafka.client.MetadataRequest = _NeverAutoCreate  # type: ignore[misc]
