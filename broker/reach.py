"""Reaching the broker at start: one line saying what is unreachable and what to check, never a traceback.

A command that needs the broker (``ethercattle topics``) says so and exits; a
replica keeps retrying until the broker answers, as the master's publisher does,
so a cluster can be started in any order.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import KafkaConnectionError

from broker.admin import ensure_topics
from cluster.settings import ENV_PREFIX, Settings
from cluster.topics import TopicSpec

log = logging.getLogger("ethercattle.broker")

RETRY_EVERY = 5.0
"""Seconds between a replica's attempts to reach the broker at start."""


def unreachable(broker: str, error: BaseException) -> str:
    """What is unreachable and what to check, in one line."""
    return (f"cannot reach the Kafka broker at {broker} ({type(error).__name__}): check that it is running and "
            f"reachable from here, and that {ENV_PREFIX}BROKER names it")


async def ensure_topics_when_reachable(settings: Settings, retry_every: float = RETRY_EVERY,
                                       specs: list[TopicSpec] | None = None) -> list[str]:
    """``ensure_topics`` (of the cluster, or of ``specs``), retried every ``retry_every`` seconds while the broker cannot be reached."""
    attempts = 0
    while True:
        try:
            return await ensure_topics(settings, specs=specs)
        except KafkaConnectionError as error:
            attempts += 1
            log.warning("%s; attempt %d, retrying every %gs", unreachable(settings.broker, error), attempts, retry_every)
            await asyncio.sleep(retry_every)
