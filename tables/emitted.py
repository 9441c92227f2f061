"""The emitter's table of settled transactions: what it forwarded (or dead-lettered), by hash.

Built only in a worker that runs an emitter (``EMIT_TARGETS`` set). A Faust
``GlobalTable`` whose changelog is the emitter's own compacted topic
(``TopicNames.emitted(EMITTER_NAME)``), shared by every worker of that emitter:
partitions of the transaction topic move between them on a rebalance, and the
new owner must know what the old one sent. Rows::

    "0x<tx hash>" -> {"delivered": bool, "targets": [label, ...], "time": unix time}

Each worker writes the rows of the transactions it settled, and waits for the
broker's acknowledgement before the emitter commits the partition's offset.
Rows older than ``EMIT_DEDUP_TTL`` are deleted by a timer.

Recovery is made complete (``recovered``): Faust reads a changelog only up to
the broker's ListOffsets "latest", which Tansu answers short of the end, so
after Faust's recovery the rest of the changelog, up to the high watermark of a
fetch, is read here and put into the table. The emitter waits for ``recovered``
before it consumes a single transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.types import TP

from broker import clients
from cluster import boundedjson
from cluster.settings import Settings
from cluster.topics import TopicNames
from tables.cluster_status import SharedGlobalTable, shared_global_table

log = logging.getLogger("ethercattle.emitter")


def key_of(tx_hash: bytes) -> str:
    return "0x" + tx_hash.hex()


class EmittedTable:
    """The emitter's table of settled transactions, complete after ``recovered`` is set; the emitter's ``Dedup``."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.topic_name = TopicNames(settings.cluster).emitted(settings.emitter_name)
        topic = app.topic(self.topic_name, key_serializer="json", value_serializer="json", partitions=1,
                          compacting=True, acks=True)
        self.table: SharedGlobalTable = shared_global_table(
            app, f"emitted-{settings.emitter_name}", topic,
            store="memory://emitted",  # rocksdb stores need a stream event per write; a bare "memory://" is falsy to Faust
            help="Transactions this emitter settled (forwarded or dead-lettered), by hash",
        )
        self.recovered = asyncio.Event()
        """Set once the table holds the whole changelog (the emitter starts consuming then)."""
        self._background: set[asyncio.Future[None]] = set()
        self.table.on_recover(self._on_recovered)
        app.timer(interval=3600.0, name="ethercattle.emitter.forget_old_rows")(self.forget_old_rows)

    async def _on_recovered(self) -> None:
        """Complete the recovery in the background (Faust waits for this callback before the worker is ready)."""
        task = asyncio.ensure_future(self.complete_recovery())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def settled(self, tx_hash: bytes) -> bool:
        return self.table.get(key_of(tx_hash)) is not None

    async def remember(self, tx_hash: bytes, outcome: dict[str, Any]) -> None:
        await self.write(key_of(tx_hash), outcome)

    async def forget_old_rows(self) -> None:
        """Delete rows older than EMIT_DEDUP_TTL (their offsets were committed long ago)."""
        if not self.recovered.is_set():
            return
        horizon = time.time() - self.settings.emit_dedup_ttl
        old = [key for key, row in list(self.table.items()) if isinstance(row, dict) and float(row.get("time", 0)) < horizon]
        for key in old:
            await self.write(key, None)
        if old:
            log.info("emitter table: forgot %d rows older than %.0fs", len(old), self.settings.emit_dedup_ttl)

    async def write(self, key: str, row: dict[str, Any] | None) -> None:
        """Set (or, with None, delete) a row, and return once its changelog record is acknowledged.

        Faust's own table writes need a current stream event and are buffered
        without a future to await; the emitter writes outside any stream and must
        know the row is on the broker before it commits past the transaction. So
        the row goes into the local store and straight onto the changelog, from
        which every other worker of this emitter applies it like any other row.
        """
        if row is None:
            self.table.data.pop(key, None)
        else:
            self.table.data[key] = row
        value = None if row is None else json.dumps(row).encode()
        await self.app.producer.send_and_wait(self.topic_name, json.dumps(key).encode(), value, 0, None, None)

    async def complete_recovery(self, timeout: float = 30.0) -> None:
        """Read the changelog from where Faust's recovery stopped to its true end; then set ``recovered``."""
        recovery: Any = self.app.tables.recovery  # type: ignore[attr-defined]  # TableManager's, not on its interface
        faust_last = recovery.active_highwaters.get(TP(self.topic_name, 0))
        start = 0 if faust_last is None or faust_last < 0 else int(faust_last) + 1
        try:
            added = await asyncio.wait_for(self._read_tail(start), timeout)
        except Exception as exc:  # noqa: BLE001 - the broker may be away: start anyway, the targets' answers still dedup
            log.warning("emitter table: could not check the changelog's end (%r); starting with %d rows", exc, len(self.table))
        else:
            if added:
                log.warning("emitter table: Faust's recovery stopped at offset %s of %s; read %d more row(s) to its end",
                            faust_last, self.topic_name, added)
            log.info("emitter table recovered: %d rows", len(self.table))
        self.recovered.set()

    async def _read_tail(self, start: int) -> int:
        """Apply changelog records from ``start`` to the high watermark; returns how many were read."""
        consumer = clients.reader(self.settings.bootstrap_servers, fetch_max_wait_ms=50)
        await consumer.start()
        try:
            partition = TopicPartition(self.topic_name, 0)
            consumer.assign([partition])
            consumer.seek(partition, start)
            read = 0
            while True:
                batches = await consumer.getmany(partition, timeout_ms=300)
                for record in batches.get(partition, []):
                    read += 1
                    key = boundedjson.loads(record.key) if record.key is not None else None
                    if key is None:
                        continue
                    if record.value is None:
                        self.table.data.pop(key, None)
                    else:
                        self.table.data[key] = boundedjson.loads(record.value)
                end = consumer.highwater(partition)
                if end is not None and await consumer.position(partition) >= end:
                    return read
        finally:
            await consumer.stop()
