"""The topic watch says each problem once, and says when it is gone."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from broker import watch
from broker.watch import ProblemLog, TopicWatch
from cluster.settings import Settings
from cluster.topics import TopicNames, TopicSpec


def test_a_problem_is_reported_once_while_it_lasts() -> None:
    problems = ProblemLog()
    assert problems.update({"t": "topic t is missing"}) == (["topic t is missing"], [])
    assert problems.update({"t": "topic t is missing"}) == ([], [])


def test_a_problem_that_changes_is_reported_again() -> None:
    problems = ProblemLog()
    problems.update({"t": "topic t is missing"})
    assert problems.update({"t": "topic t has 4 partition(s)"}) == (["topic t has 4 partition(s)"], [])


def test_a_problem_gone_names_its_topic() -> None:
    problems = ProblemLog()
    problems.update({"t": "topic t is missing", "u": "topic u is missing"})
    assert problems.update({"u": "topic u is missing"}) == ([], ["t"])


class Broker:
    """What the watch sees: partitions held by topic; ``created`` the topics it was asked to create."""

    def __init__(self, held: dict[str, int]) -> None:
        self.held = held
        self.created: list[str] = []

    async def partitions_held(self, settings: Settings, names: list[str]) -> dict[str, int | None]:
        return {name: self.held.get(name) for name in names}

    async def ensure_topics(self, settings: Settings, check_retention: bool = True,
                            specs: list[TopicSpec] | None = None) -> list[str]:
        for spec in specs or []:
            self.held[spec.name] = spec.partitions
            self.created.append(spec.name)
        return [spec.name for spec in specs or []]


NAMES = TopicNames("main")
NEEDED = NAMES.specs(4, 3600.0, 3600.0)
OWNED = NAMES.emitter_specs("default")


def watch_over(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> TopicWatch:
    monkeypatch.setattr(watch, "partitions_held", broker.partitions_held)
    monkeypatch.setattr(watch, "ensure_topics", broker.ensure_topics)
    return TopicWatch(Settings(broker="kafka://127.0.0.1:9", cluster="main", secret="s" * 24, datadir=Path("/nonexistent")), NEEDED, OWNED)


async def test_the_watch_creates_a_missing_topic_it_owns_and_only_names_a_missing_cluster_topic(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    broker = Broker({spec.name: spec.partitions for spec in NEEDED if spec.name != NAMES.filters})
    topic_watch = watch_over(broker, monkeypatch)
    with caplog.at_level(logging.INFO, logger="ethercattle.topics"):
        await topic_watch.check()
        await topic_watch.check()
    assert broker.created == [NAMES.emitted("default")]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        topic_watch.problems.reported[NAMES.filters]]
    assert "missing" in topic_watch.problems.reported[NAMES.filters]


async def test_the_watch_says_when_a_topic_is_back(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    broker = Broker({spec.name: spec.partitions for spec in NEEDED + OWNED if spec.name != NAMES.cdc})
    topic_watch = watch_over(broker, monkeypatch)
    await topic_watch.check()
    broker.held[NAMES.cdc] = 1
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ethercattle.topics"):
        await topic_watch.check()
    assert [r.getMessage() for r in caplog.records] == [f"topic {NAMES.cdc} is on the broker as designed again"]
