"""Reading the tables' changelogs again from their start, after the master created them anew.

When the broker lost its log, the master re-creates the cluster's topics (the
status table's changelog among them; an emitter's workers re-create theirs).
Faust keeps, in the process, how far it read each changelog: on the new,
shorter topics those positions lie past the end, so its recovery would skip
the new rows (and its consistency check would crash the worker). When the
replica continues on the re-based log, this makes Faust read each table's
changelog from its start again: the recovery's offsets are forgotten and its
consumer, which also reads the global tables' rows as they come, seeks to 0.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import faust
from faust.types import TP

log = logging.getLogger("ethercattle.tables")


async def read_changelogs_again(app: faust.App, topics: list[str]) -> None:
    """Make Faust read the one-partition changelogs ``topics`` from offset 0 (recovery and standby reading)."""
    partitions = [TP(topic, 0) for topic in topics]
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]  # TableManager's, not on its interface
    for offsets in (recovery.active_offsets, recovery.standby_offsets):
        for tp in partitions:
            if tp in offsets:
                offsets[tp] = -1
    assigned = app.consumer.assignment()
    await app.consumer.seek_wait({tp: 0 for tp in partitions if tp in assigned})
    log.info("tables: reading %s again from the start (the master created them anew)", ", ".join(topics))


def on_rebase(app: faust.App, topics: list[str]) -> Callable[[], None]:
    """A ``ReplicaState.rebased`` callback running ``read_changelogs_again`` in the background."""
    background: set[asyncio.Future[None]] = set()

    def said(task: asyncio.Future[None]) -> None:
        background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("tables: could not read the changelogs again (%r)", task.exception())

    def start_over() -> None:
        task = asyncio.ensure_future(read_changelogs_again(app, topics))
        background.add(task)
        task.add_done_callback(said)

    return start_over
