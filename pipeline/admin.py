"""Creating a cluster's topics with the partition counts the design needs.

Topics are created explicitly: brokers auto-create topics with their own
default partition count (Tansu: 4), and a CDC topic with more than one
partition would split the ordered log.
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.settings import Settings
from pipeline.topics import TopicNames

log = logging.getLogger("ethercattle.admin")


async def ensure_topics(settings: Settings) -> list[str]:
    """Create whichever of the cluster's topics are missing; returns the names created."""
    specs = TopicNames(settings.cluster).specs(settings.transaction_partitions)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        for spec in missing:
            config = {"cleanup.policy": "compact"} if spec.compacted else {}
            try:
                await admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, settings.topic_replication, topic_configs=config)]
                )
            except TopicAlreadyExistsError:
                continue
            log.info("created topic %s (%d partitions)", spec.name, spec.partitions)
        return [spec.name for spec in missing]
    finally:
        await admin.close()
