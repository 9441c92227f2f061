"""Topic shapes and the broker's retention, checked against what it reports (a fake admin client)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka.admin.config_resource import ConfigResourceType

from broker.admin import layout_problems, partition_counts, retention_mismatches
from cluster.topics import TopicNames, TopicSpec

DAY = 24 * 3600.0
SPECS = TopicNames("main").specs(4, 7 * DAY, DAY)


class FakeAdmin:
    """Answers DescribeConfigs with ``reported`` ({topic: retention.ms or None}), or raises ``error``."""

    def __init__(self, reported: dict[str, str | None] | None = None, error: Exception | None = None) -> None:
        self.reported = reported or {}
        self.error = error

    async def describe_configs(self, resources: list[object]) -> list[object]:
        if self.error is not None:
            raise self.error
        topic = ConfigResourceType.TOPIC.value
        return [SimpleNamespace(resources=[
            (0, None, topic, name, [("retention.ms", ms, False, False, False)] if ms is not None else [])
            for name, ms in self.reported.items()])]


def mismatches(admin: FakeAdmin) -> list[str]:
    return asyncio.run(retention_mismatches(admin, SPECS))  # type: ignore[arg-type]


def test_the_cdc_and_transaction_topics_are_created_with_time_retention_and_the_shared_views_compacted() -> None:
    configs = {spec.name: spec.configs() for spec in SPECS}
    names = TopicNames("main")
    assert configs[names.cdc] == {"cleanup.policy": "delete", "retention.ms": str(7 * 86_400_000)}
    assert configs[names.transactions]["retention.ms"] == configs[names.dead_letters]["retention.ms"] == "86400000"
    assert configs[names.filters] == configs[names.replica_status] == {"cleanup.policy": "compact"}
    assert TopicSpec("plain", 1).configs() == {}


def test_a_broker_holding_the_configured_retention_raises_no_warning() -> None:
    admin = FakeAdmin({spec.name: spec.configs()["retention.ms"] for spec in SPECS if not spec.compacted})
    assert mismatches(admin) == []


def test_a_topic_retained_otherwise_is_named_with_both_values() -> None:
    names = TopicNames("main")
    reported = {spec.name: spec.configs()["retention.ms"] for spec in SPECS if not spec.compacted}
    reported[names.cdc] = "3600000"
    [warning] = mismatches(FakeAdmin(reported))
    assert names.cdc in warning and "retention.ms=3600000" in warning and str(7 * 86_400_000) in warning


def test_a_broker_that_reports_no_retention_is_said_to_keep_every_record() -> None:
    names = TopicNames("main")
    reported: dict[str, str | None] = {spec.name: spec.configs()["retention.ms"] for spec in SPECS if not spec.compacted}
    reported[names.cdc] = None
    [warning] = mismatches(FakeAdmin(reported))
    assert names.cdc in warning and "keeps every record" in warning


def test_a_broker_that_cannot_describe_configs_leaves_the_retention_unknown_and_says_so() -> None:
    [warning] = mismatches(FakeAdmin(error=ConnectionError("closed")))
    assert "retention is unknown" in warning and "closed" in warning


class DescribingAdmin:
    """Answers DescribeTopics as a broker holding ``held`` ({topic: partitions}) would, creating nothing."""

    def __init__(self, held: dict[str, int]) -> None:
        self.held = held

    async def describe_topics(self, names: list[str]) -> list[dict[str, object]]:
        return [{"topic": name, "error_code": 0, "partitions": [{"partition": p} for p in range(self.held[name])]}
                if name in self.held else {"topic": name, "error_code": 3, "partitions": []} for name in names]


def test_partition_counts_name_each_topic_held_and_none_for_a_missing_one() -> None:
    names = TopicNames("main")
    admin = DescribingAdmin({names.cdc: 1, names.transactions: 4})
    counts = asyncio.run(partition_counts(admin, [names.cdc, names.transactions, names.filters]))  # type: ignore[arg-type]
    assert counts == {names.cdc: 1, names.transactions: 4, names.filters: None}


def test_topics_held_as_designed_have_no_problem() -> None:
    assert layout_problems(SPECS, {spec.name: spec.partitions for spec in SPECS}) == {}


def test_a_topic_with_another_partition_count_is_named_with_what_to_do() -> None:
    names = TopicNames("main")
    found: dict[str, int | None] = {spec.name: spec.partitions for spec in SPECS}
    found[names.filters] = 4
    problem = layout_problems(SPECS, found)[names.filters]
    assert "4 partition(s) where the design needs 1" in problem
    assert f"kafka-topics --delete --topic {names.filters}" in problem and "ethercattle topics" in problem


def test_a_missing_topic_says_who_creates_it() -> None:
    names = TopicNames("main")
    found: dict[str, int | None] = {spec.name: spec.partitions for spec in SPECS}
    found[names.replica_status] = None
    problems = layout_problems(SPECS, found)
    assert list(problems) == [names.replica_status]
    assert "missing" in problems[names.replica_status] and "the master re-creates" in problems[names.replica_status]


def test_an_emitter_owns_its_changelog_compacted_with_one_partition() -> None:
    [spec] = TopicNames("main").emitter_specs("e1")
    assert spec == TopicSpec(TopicNames("main").emitted("e1"), 1, compacted=True)
