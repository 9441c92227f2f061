"""No broker ever creates one of our topics on its own.

A Kafka client asks for a topic's metadata before it produces or consumes, and
aiokafka lets the broker create a missing topic on that request unless told
otherwise, with the broker's default partition count (Tansu: 4). Every
metadata request of the process is one ``MetadataRequest`` class, built by
aiokafka's client, its admin client (``describe_topics``) and Faust's driver,
each from its own import of it; ``forbid_topic_auto_creation`` changes how the
class builds the request, so all of them ask without auto-creation. A missing
topic then stays missing (the client sees ``UnknownTopicOrPartitionError``)
until our code creates it with the layout the design needs.

Metadata versions below 4 carry no such flag: a broker that old (Apache Kafka
before 1.0) auto-creates when its ``auto.create.topics.enable`` is on, which is
said once, loudly.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.protocol.metadata import MetadataRequest

log = logging.getLogger("ethercattle.broker")

FLAGLESS_BELOW = 4
"""Metadata requests of lower versions cannot say "do not create"."""

_original_build = MetadataRequest.build
_warned: list[bool] = []


def _build_without_auto_creation(self: MetadataRequest, request_struct_class: Any) -> Any:
    """Build the request as aiokafka would, with auto-creation off; warn once where the version cannot say so."""
    self._allow_auto_topic_creation = False
    if request_struct_class.API_VERSION < FLAGLESS_BELOW and self._topics and not _warned:
        _warned.append(True)
        log.warning(
            "the broker answers metadata only below version %d, which cannot forbid topic auto-creation: "
            "set auto.create.topics.enable=false on it, or a missing topic is created with its default layout",
            FLAGLESS_BELOW)
    return _original_build(self, request_struct_class)


def forbid_topic_auto_creation() -> None:
    """Make every metadata request of this process ask without auto-creation (idempotent)."""
    MetadataRequest.build = _build_without_auto_creation  # type: ignore[method-assign]
