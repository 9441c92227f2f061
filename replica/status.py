"""The cluster status as one replica sees it: its own row, every replica's rows, the chart's history.

Every replica writes its own row, keyed by its replica id, into a table that
every replica of the cluster reads (``tables.cluster_status``); a row is::

    {"replica": id, "cluster": name, "head": number, "head_hash": hex, "head_time": unix time,
     "master_head": number, "sequence": n, "offset": next offset, "log_end": offset,
     "lag": messages, "ready": bool, "reason": why not ready | None, "halted": reason | None,
     "time": unix time, "web": url}

A replica that stops publishing keeps its last row; ``rows()`` marks it stale, and after
``FORGET_AFTER`` seconds of silence any replica deletes it (``forget_departed``).
The status page (``/status``, ``/status.json``) shows ``page()``. Plain data:
the table is any mapping, so this runs without Faust.
"""

from __future__ import annotations

import time
from typing import Any, Callable, MutableMapping

from chain.head import read_head
from replica.history import History, Sample, sample_from_row
from replica.readiness import (
    broker_silence,
    checks,
    highest_block,
    not_ready_reason,
    sync_progress,
)
from replica.state import ReplicaState

STALE_INTERVALS = 3
"""A row older than this many intervals belongs to a replica that stopped publishing."""

Row = dict[str, Any]

FORGET_AFTER = 3600.0
"""Seconds of silence after which a replica's row is deleted from the table: cattle come and go
under new ids, and every replica holds the whole table in memory."""


class StatusBoard:
    """This replica's row, the cluster's rows and their history.

    Arguments:
        replica: this replica's live state.
        table: every replica's latest row by replica id (the cluster status table).
        web_url: this replica's web address, as rows advertise it.
    """

    def __init__(self, replica: ReplicaState, table: MutableMapping[str, Any], web_url: Callable[[], str]) -> None:
        self.replica = replica
        self.table = table
        self.web_url = web_url
        self.replica_id = replica.settings.require_replica_id()
        self.interval = replica.settings.status_interval
        self.history = History(self.interval)
        """Samples of every replica's rows over the last hour, for the status page's chart."""

    def own_row(self, now: float | None = None) -> Row:
        """This replica's row of the cluster status table."""
        now = time.time() if now is None else now
        replica = self.replica
        current = read_head(replica.db)
        reason = not_ready_reason(replica, now)
        master_head = highest_block(replica)
        if master_head is not None and current is not None:
            master_head = max(master_head, current.number)  # the master holds at least what was applied here
        return {
            "replica": self.replica_id,
            "cluster": replica.settings.cluster,
            "head": None if current is None else current.number,
            "head_hash": None if current is None else "0x" + current.hash.hex(),
            "head_time": None if current is None else current.timestamp,
            "master_head": master_head,
            "sequence": replica.applier.position.sequence,
            "offset": replica.applier.position.next_offset,
            "log_end": replica.log_end,
            "lag": replica.lag,
            "ready": reason is None,
            "reason": reason,
            "halted": None if replica.halted is None else replica.halted.reason,
            "time": now,
            "web": self.web_url(),
        }

    def rows(self, now: float | None = None) -> list[Row]:
        """Every replica's row, sorted by replica id, each marked ``stale`` when it stopped publishing."""
        now = time.time() if now is None else now
        result = []
        for key, row in list(self.table.items()):
            if not isinstance(row, dict) or "time" not in row:
                continue
            age = max(now - float(row["time"]), 0.0)
            result.append({**row, "replica": row.get("replica", key), "age": round(age, 3),
                           "stale": age > STALE_INTERVALS * self.interval})
        return sorted(result, key=lambda row: str(row["replica"]))

    def publish(self, row: Row) -> None:
        """Write this replica's row (never another replica's key; departed ones are only deleted)."""
        self.table[row["replica"]] = row

    def forget_departed(self, now: float | None = None) -> list[str]:
        """Delete the rows of replicas silent for ``FORGET_AFTER`` seconds (and rows that are not
        rows at all); returns their ids. Any replica may: a departed one never deletes its own, and
        a replica that comes back writes a new row at its next interval."""
        now = time.time() if now is None else now
        departed = [key for key, row in list(self.table.items())
                    if key != self.replica_id and (not isinstance(row, dict) or "time" not in row
                                                    or now - float(row["time"]) > FORGET_AFTER)]
        for key in departed:
            self.table.pop(key, None)
        return departed

    def sample(self, row: Row) -> None:
        """Add this replica's newest row to the chart history."""
        self.history.add(self.replica_id, Sample(row["time"], row["head"], row["lag"], row["ready"]))

    def sample_all(self) -> None:
        """Append every replica's newest row to the chart history."""
        for row in self.rows():
            self.history.add(str(row["replica"]), sample_from_row(row))
        self.history.prune(time.time())

    def page(self, now: float | None = None) -> dict[str, Any]:
        """This replica's row with its checks, every replica's row, and the chart history."""
        now = time.time() if now is None else now
        replica = self.replica
        me = self.own_row(now)
        progress = sync_progress(replica)
        me.update(
            checks=[{"name": c.name, "ok": c.ok, "value": c.value, "limit": c.limit, "detail": c.detail}
                    for c in checks(replica, now)],
            heartbeat_age=None if replica.heartbeat is None else round(now - replica.heartbeat.clock, 3),
            broker_silence=broker_silence(replica, now),
            strays=sum(replica.strays_skipped.values()),
            last_stray=None if replica.last_stray is None else vars(replica.last_stray),
            syncing=None if progress is None else {
                "startingBlock": progress.starting_block, "currentBlock": progress.current_block,
                "highestBlock": progress.highest_block,
            },
        )
        rows = self.rows(now)
        if not any(row["replica"] == self.replica_id for row in rows):
            rows = sorted([*rows, {**me, "age": 0.0, "stale": False}], key=lambda row: str(row["replica"]))
        return {
            "now": now,
            "interval": self.interval,
            "cluster": replica.settings.cluster,
            "replica": self.replica_id,
            "self": me,
            "replicas": rows,
            "history": self.history.as_json(),
        }
