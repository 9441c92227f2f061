"""After a re-base, Faust reads the tables' changelogs from their start again."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from tables.changelogs import read_changelogs_again

STATUS, EMITTED, OTHER = TP("c.replica-status", 0), TP("c.emitter.default.emitted", 0), TP("c.other-changelog", 0)


class Consumer:
    def __init__(self, assigned: set[TP]) -> None:
        self.assigned = assigned
        self.sought: dict[TP, int] = {}

    def assignment(self) -> set[TP]:
        return self.assigned

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.sought.update(partitions)


def app_with(consumer: Consumer, active: dict[TP, int], standby: dict[TP, int]) -> Any:
    return SimpleNamespace(consumer=consumer, tables=SimpleNamespace(
        recovery=SimpleNamespace(active_offsets=active, standby_offsets=standby)))


async def test_the_recovery_forgets_how_far_it_read_and_the_consumer_seeks_to_the_start() -> None:
    consumer = Consumer({STATUS, EMITTED, OTHER})
    active, standby = {STATUS: 14, OTHER: 9}, {EMITTED: 30}
    await read_changelogs_again(app_with(consumer, active, standby), [STATUS.topic, EMITTED.topic])
    assert active == {STATUS: -1, OTHER: 9} and standby == {EMITTED: -1}
    assert consumer.sought == {STATUS: 0, EMITTED: 0}


async def test_a_changelog_not_assigned_is_not_sought() -> None:
    consumer = Consumer({STATUS})
    await read_changelogs_again(app_with(consumer, {}, {}), [STATUS.topic, EMITTED.topic])
    assert consumer.sought == {STATUS: 0}
