"""Creating a cluster's topics with the partition counts and retention the design needs.

Topics are created explicitly: brokers auto-create topics with their own
default partition count (Tansu: 4) and retention, and a CDC topic with more
than one partition would split the ordered log. After creating them, the
broker is asked what retention it holds for each: a broker that ignores
``retention.ms`` (the local Tansu broker keeps every record) is said out loud,
since the snapshot retention checks and the operator's disk plan depend on it.

Only our code creates a topic (every client asks for metadata without
auto-creation), and a topic found with another partition count than its spec
is named with what to do: it was made by someone else, and it is not ours to
delete.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from broker import clients
from cluster.settings import Settings
from cluster.topics import TopicNames, TopicSpec

log = logging.getLogger("ethercattle.admin")

END_WAIT = 5.0
"""Longest wait, in seconds, for the end offsets of a topic just created."""


def cluster_topics(settings: Settings) -> list[TopicSpec]:
    return TopicNames(settings.cluster).specs(
        settings.transaction_partitions, settings.cdc_retention, settings.transaction_retention)


async def ensure_topics(settings: Settings, check_retention: bool = True, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create whichever of the cluster's topics (or of ``specs``) are missing; returns the names created.

    Every topic found is checked against its spec: one of another partition
    count is logged as an error saying what to do (it is left alone: it may hold
    records someone needs). A topic just created that already holds records is
    created again empty (``_created_empty``). With ``check_retention``, logs a
    warning for each topic whose retention the broker does not hold as configured.
    """
    specs = cluster_topics(settings) if specs is None else specs
    admin = clients.admin(settings)
    await admin.start()
    try:
        found = await partition_counts(admin, [spec.name for spec in specs])
        missing = [spec for spec in specs if found[spec.name] is None]
        for problem in layout_problems([spec for spec in specs if found[spec.name] is not None], found).values():
            log.error("%s", problem)
        created = [spec.name for spec in missing if await _create(admin, settings, spec)]
        await _created_empty(admin, settings, [spec for spec in missing if spec.name in created])
        for warning in await retention_mismatches(admin, specs) if check_retention else []:
            log.warning("%s", warning)
        return created
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, settings: Settings, spec: TopicSpec) -> bool:
    """Create one topic as specified; False if someone else created it meanwhile."""
    try:
        await admin.create_topics([NewTopic(spec.name, spec.partitions, settings.topic_replication,
                                            topic_configs=spec.configs())])
    except TopicAlreadyExistsError:
        return False
    log.info("created topic %s (%d partitions, %s)", spec.name, spec.partitions, spec.configs() or "broker defaults")
    return True


async def _created_empty(admin: AIOKafkaAdminClient, settings: Settings, specs: list[TopicSpec]) -> None:
    """Create again, empty, each just-created topic that already holds records.

    Tansu acknowledges a produce to a topic it does not have and keeps the
    records for a topic of that name created later (measured: the new topic
    began with them, and the next produces failed once per kept record with
    UnknownError). After a broker lost its log, clients still holding the old
    metadata produce exactly that. A topic created by us must begin empty: the
    new CDC log with the master's REBASE, the views with what is written from
    then on. Deleting the created topic drops the kept records on Tansu; on
    Apache Kafka a new topic is always empty and this finds nothing.
    """
    if not specs:
        return  # (aiokafka's consumer.stop() right after start() raises CancelledError)
    consumer = clients.reader(settings.bootstrap_servers)
    await consumer.start()
    try:
        for spec in specs:
            partitions = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
            try:
                kept = sum((await asyncio.wait_for(consumer.end_offsets(partitions), END_WAIT)).values())
            except (KafkaError, asyncio.TimeoutError) as exc:  # not answered for yet (Apache Kafka): its new topics are empty
                log.debug("could not read the end of the new topic %s (%r)", spec.name, exc)
                continue
            if kept:
                log.warning("topic %s held %d message(s) when created: the broker kept what clients produced to it while it "
                            "did not exist (Tansu acknowledges such produces); created it again, empty", spec.name, kept)
                await admin.delete_topics([spec.name])
                await _create(admin, settings, spec)
    finally:
        await consumer.stop()


async def partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int | None]:
    """How many partitions the broker holds of each named topic; None for one it does not have (never creates one)."""
    counts: dict[str, int | None] = dict.fromkeys(names)
    for described in await admin.describe_topics(names) if names else []:
        if described.get("error_code") == 0 and described.get("partitions"):
            counts[described["topic"]] = len(described["partitions"])
    return counts


def layout_problems(specs: list[TopicSpec], found: dict[str, int | None]) -> dict[str, str]:
    """By topic, a line for each one the broker lacks or holds with another partition count, saying what to do."""
    problems = {}
    for spec in specs:
        count = found.get(spec.name)
        if count is None:
            problems[spec.name] = (f"topic {spec.name} is missing on the broker (did it lose its log?): the master re-creates "
                                   f"the cluster's topics when it connects (start it if it is not running), or run "
                                   f"`ethercattle topics`")
        elif count != spec.partitions:
            problems[spec.name] = (f"topic {spec.name} has {count} partition(s) where the design needs {spec.partitions}: "
                                   f"someone else created it (a client or broker that auto-creates topics). Delete it "
                                   f"(kafka-topics --delete --topic {spec.name}) and run `ethercattle topics` to create it "
                                   f"as designed")
    return problems


async def recreate_topic(settings: Settings, name: str) -> None:
    """Delete one of the cluster's topics and create it again as specified (empty).

    For a log the broker lost while the master kept producing to it (Tansu
    acknowledges those produces); nothing on it is worth keeping.
    """
    (spec,) = [spec for spec in cluster_topics(settings) if spec.name == name]
    admin = clients.admin(settings)
    await admin.start()
    try:
        if (await partition_counts(admin, [name]))[name] is not None:
            await admin.delete_topics([name])
        if await _create(admin, settings, spec):
            await _created_empty(admin, settings, [spec])
    finally:
        await admin.close()


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



async def partitions_held(settings: Settings, names: list[str]) -> dict[str, int | None]:
    """``partition_counts`` of the named topics, asked of the broker with a client of its own."""
    admin = clients.admin(settings)
    await admin.start()
    try:
        return await partition_counts(admin, names)
    finally:
        await admin.close()
