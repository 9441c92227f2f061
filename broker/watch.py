"""Watching that the topics a worker needs are on the broker as designed: one line when that changes.

After a broker lost its log, a worker's clients find its topics gone; aiokafka
then repeats "Topic ... not found in cluster metadata", which names no cause
and no cure. The watch checks every few seconds, says once per topic what is
wrong and who puts it right, and says when it is right again. It never creates
a topic of the cluster (the master re-creates those when it re-bases), only
the ones this worker owns, which no other process knows the name of: an
emitter's changelog.
"""

from __future__ import annotations

import asyncio
import logging

import mode
from aiokafka.errors import KafkaError

from broker.admin import ensure_topics, layout_problems, partitions_held
from cluster.settings import Settings
from cluster.topics import TopicSpec

log = logging.getLogger("ethercattle.topics")

CHECK_EVERY = 5.0
"""Seconds between two checks of a worker's topics."""


class ProblemLog:
    """The problems last reported, by topic: what a new check adds and what it clears."""

    def __init__(self) -> None:
        self.reported: dict[str, str] = {}

    def update(self, problems: dict[str, str]) -> tuple[list[str], list[str]]:
        """(lines not reported yet, topics whose problem is gone); ``problems`` is by topic."""
        new = [line for topic, line in problems.items() if self.reported.get(topic) != line]
        gone = [topic for topic in self.reported if topic not in problems]
        self.reported = dict(problems)
        return new, gone


class TopicWatch(mode.Service):
    """Checks ``needed`` (reported) and ``owned`` (created when missing) topics every ``interval`` seconds."""

    def __init__(self, settings: Settings, needed: list[TopicSpec], owned: list[TopicSpec],
                 interval: float = CHECK_EVERY) -> None:
        super().__init__()
        self.settings = settings
        self.needed = needed
        self.owned = owned
        self.interval = interval
        self.problems = ProblemLog()
        self._due = asyncio.Event()

    def check_now(self) -> None:
        """Check without waiting for the interval (the master just created the cluster's topics anew)."""
        self._due.set()

    @mode.Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            try:
                await asyncio.wait_for(self._due.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._due.clear()
            await self.check()

    async def check(self) -> None:
        """One check: create the owned topics that are missing, report what else changed."""
        specs = self.needed + self.owned
        try:
            found = await partitions_held(self.settings, [spec.name for spec in specs])
            missing_owned = [spec for spec in self.owned if found[spec.name] is None]
            created = await ensure_topics(self.settings, check_retention=False, specs=missing_owned) if missing_owned else []
        except KafkaError as exc:  # the broker is away: readiness says so; check again next time
            log.debug("could not check the topics (%r)", exc)
            return
        problems = layout_problems([spec for spec in specs if spec.name not in created], found)
        new, gone = self.problems.update(problems)
        for line in new:
            log.warning("%s", line)
        for topic in gone:
            log.info("topic %s is on the broker as designed again", topic)
