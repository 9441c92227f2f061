"""Only our code creates a topic, and a topic it creates begins empty, on the real local broker."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from broker import clients
from broker.admin import ensure_topics, partitions_held
from cluster.settings import Settings
from cluster.topics import TopicNames
from deploy.localbroker import LocalBroker
from tests.integration.harness import SECRET, Cluster

pytestmark = pytest.mark.broker


def settings_for(broker: LocalBroker, tmp_path: Path) -> Settings:
    return Settings(broker=broker.url, cluster=f"t{uuid.uuid4().hex[:10]}", secret=SECRET, datadir=tmp_path)


async def produce_to_missing_topic(settings: Settings, topic: str) -> int:
    """A Produce request for partition 0 of ``topic`` sent as by a client holding old metadata; the error code."""
    batch = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                      producer_epoch=-1, base_sequence=-1, batch_size=1 << 16)
    batch.append(0, timestamp=None, key=b"0xfilter", value=b"kept while the topic was gone", headers=[])
    client = AIOKafkaClient(bootstrap_servers=settings.bootstrap_servers)
    await client.bootstrap()
    try:
        (node,) = [broker.nodeId for broker in client.cluster.brokers()]
        response = await client.send(node, ProduceRequest(None, -1, 5000, [(topic, [(0, bytes(batch.build()))])]))
        return int(response.topics[0][1][0][1])
    finally:
        await client.close()


async def produce(settings: Settings, topic: str) -> int:
    producer = clients.producer(settings)
    await producer.start()
    try:
        return (await producer.send_and_wait(topic, b"after", partition=0)).offset
    finally:
        await producer.stop()


def test_asking_for_a_missing_topic_does_not_create_it(broker: LocalBroker, tmp_path: Path) -> None:
    settings = settings_for(broker, tmp_path)
    filters = TopicNames(settings.cluster).filters
    for _ in range(2):
        assert asyncio.run(partitions_held(settings, [filters])) == {filters: None}


def test_a_topic_the_broker_kept_records_for_while_it_did_not_exist_is_created_empty(broker: LocalBroker, tmp_path: Path) -> None:
    settings = settings_for(broker, tmp_path)
    filters = TopicNames(settings.cluster).filters
    assert asyncio.run(produce_to_missing_topic(settings, filters)) == 0  # Tansu acknowledges it
    assert filters in asyncio.run(ensure_topics(settings, check_retention=False))
    assert asyncio.run(partitions_held(settings, [filters])) == {filters: 1}
    assert asyncio.run(produce(settings, filters)) == 0  # empty, and the next produce is not refused


def test_ethercattle_topics_names_a_topic_someone_else_made_with_another_partition_count_and_exits_1(
        broker: LocalBroker, tmp_path: Path) -> None:
    cluster = Cluster(broker.url, tmp_path)
    filters = TopicNames(cluster.name).filters
    asyncio.run(create_topic(broker, filters, partitions=4))  # as a broker's auto-creation would
    done = cluster.ethercattle("topics")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"not as designed: {filters}" in done.stdout
    assert f"topic {filters} has 4 partition(s) where the design needs 1" in done.stderr
    assert f"kafka-topics --delete --topic {filters}" in done.stderr


async def create_topic(broker: LocalBroker, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.url.removeprefix("kafka://"))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
