"""Creating a cluster's topics with the partition counts and retention the design needs.

Topics are created explicitly: brokers auto-create topics with their own
default partition count (Tansu: 4) and retention, and a CDC topic with more
than one partition would split the ordered log. After creating them, the
broker is asked what retention it holds for each: a broker that ignores
``retention.ms`` (the local Tansu broker keeps every record) is said out loud,
since the snapshot retention checks and the operator's disk plan depend on it.
"""

from __future__ import annotations

import logging

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from broker import clients
from cluster.settings import Settings
from cluster.topics import TopicNames, TopicSpec

log = logging.getLogger("ethercattle.admin")


def cluster_topics(settings: Settings) -> list[TopicSpec]:
    return TopicNames(settings.cluster).specs(
        settings.transaction_partitions, settings.cdc_retention, settings.transaction_retention)


async def ensure_topics(settings: Settings, check_retention: bool = True) -> list[str]:
    """Create whichever of the cluster's topics are missing; returns the names created.

    With ``check_retention``, logs a warning for each topic whose retention the broker does not hold as configured.
    """
    specs = cluster_topics(settings)
    admin = clients.admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        for spec in missing:
            try:
                await admin.create_topics([NewTopic(spec.name, spec.partitions, settings.topic_replication,
                                                    topic_configs=spec.configs())])
            except TopicAlreadyExistsError:
                continue
            log.info("created topic %s (%d partitions, %s)", spec.name, spec.partitions, spec.configs() or "broker defaults")
        for warning in await retention_mismatches(admin, specs) if check_retention else []:
            log.warning("%s", warning)
        return [spec.name for spec in missing]
    finally:
        await admin.close()


async def recreate_topic(settings: Settings, name: str) -> None:
    """Delete one of the cluster's topics and create it again as specified (empty).

    For a log the broker lost and then re-created on a produce with its own
    partition count (Tansu creates a topic on Produce, whatever the metadata
    request said); nothing on it is worth keeping.
    """
    (spec,) = [spec for spec in cluster_topics(settings) if spec.name == name]
    admin = clients.admin(settings)
    await admin.start()
    try:
        if name in set(await admin.list_topics()) or await _described(admin, name):
            await admin.delete_topics([name])
        await admin.create_topics([NewTopic(spec.name, spec.partitions, settings.topic_replication, topic_configs=spec.configs())])
    finally:
        await admin.close()


async def _described(admin: AIOKafkaAdminClient, name: str) -> bool:
    """Whether the broker knows the topic (Tansu lists no topic it auto-created, but describes it)."""
    try:
        (described,) = await admin.describe_topics([name])
    except Exception:  # noqa: BLE001 - unknown either way
        return False
    return described.get("error_code") == 0 and bool(described.get("partitions"))


async def log_is_empty(settings: Settings, topic: str) -> bool:
    """Whether partition 0 of ``topic`` holds no message (ListOffsets is exact for an empty log, even on Tansu)."""
    consumer = clients.reader(settings.bootstrap_servers)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        return (await consumer.end_offsets([partition]))[partition] == 0
    finally:
        await consumer.stop()


async def retention_mismatches(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> list[str]:
    """One line per time-retained topic whose ``retention.ms`` the broker does not report as configured."""
    wanted = {spec.name: ms for spec in specs if (ms := spec.configs().get("retention.ms")) is not None}
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, {"retention.ms": None}) for name in wanted])
        reported = topic_configs(responses)
    except Exception as exc:  # noqa: BLE001 - any failure means the retention is unknown, which is the finding
        return [f"the broker did not describe the topics' configs ({exc!r}): their retention is unknown "
                f"(the local Tansu broker answers no DescribeConfigs and keeps every record); on Apache Kafka, "
                f"check that it keeps the CDC log at least as long as snapshots are apart"]
    held = {name: reported.get(name, {}).get("retention.ms") for name in wanted}
    return [retention_mismatch(name, ms, held[name]) for name, ms in wanted.items() if held[name] != ms]


def retention_mismatch(topic: str, wanted_ms: str, reported_ms: str | None) -> str:
    hours = int(wanted_ms) / 3_600_000
    if reported_ms is None:
        return (f"topic {topic}: the broker reports no retention.ms (wanted {wanted_ms} ms = {hours:g} h); "
                f"a broker without retention (the local Tansu broker) keeps every record and grows without bound")
    return (f"topic {topic}: the broker holds retention.ms={reported_ms}, not {wanted_ms} ({hours:g} h): "
            f"it was created earlier or by someone else; change it with kafka-configs --alter if that is wrong")


def topic_configs(responses: list[object]) -> dict[str, dict[str, str | None]]:
    """``{topic: {config name: value}}`` from DescribeConfigs responses (any protocol version)."""
    found: dict[str, dict[str, str | None]] = {}
    for response in responses:
        for resource in getattr(response, "resources", []):
            error_code, _, resource_type, name, entries = resource[:5]
            if error_code != 0 or resource_type != ConfigResourceType.TOPIC.value:
                continue
            found[name] = {entry[0]: entry[1] for entry in entries}
    return found
