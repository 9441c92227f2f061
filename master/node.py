"""A running master: its LevelDB wrapped by capture, the publisher and the heartbeat timer.

Everything that feeds the chain (an import, the dev miner) writes through
``node.db`` (the capture wrapper) and never waits for the broker; the
publisher drains the journal in the background.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from broker.admin import ensure_topics
from broker.autocreate import forbid_topic_auto_creation
from chain.head import read_head
from cluster.settings import Settings
from master.capture import CaptureDB
from master.publisher import Publisher, heartbeat_timer
from storage.leveldb import LevelDB

log = logging.getLogger("ethercattle.master")


class MasterNode:
    """``async with MasterNode(settings) as node:`` then write through ``node.db``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.leveldb = LevelDB(settings.chaindb)
        self.publisher: Publisher | None = None
        self.db: CaptureDB | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def head(self) -> tuple[int, int, bytes]:
        """(number, timestamp, hash) of the canonical head, zeros before genesis."""
        head = read_head(self.leveldb)
        return (0, 0, b"\0" * 32) if head is None else (head.number, head.timestamp, head.hash)

    async def __aenter__(self) -> "MasterNode":
        forbid_topic_auto_creation()
        try:
            await asyncio.wait_for(ensure_topics(self.settings), timeout=15)
        except Exception as exc:  # the publisher keeps retrying; topics may be created by then
            log.warning("could not ensure topics on %s (%r); the publisher will keep retrying", self.settings.broker, exc)
        self.publisher = Publisher(self.settings, self.leveldb, self.head)
        self.db = CaptureDB(self.leveldb, on_commit=self.publisher.notify)
        self._tasks = [
            asyncio.create_task(self.publisher.run(), name="publisher"),
            asyncio.create_task(heartbeat_timer(self.publisher, self.settings.heartbeat_interval), name="heartbeats"),
        ]
        return self

    async def flush(self) -> None:
        assert self.publisher is not None
        await self.publisher.flush()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.leveldb.close()
