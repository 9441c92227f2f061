"""``/status``: one HTML page (no external assets) showing this replica and its cluster.

The page (``status.html``) carries its first data inline, so it renders at
once, offline and without JavaScript fetches; its script then refreshes from
``/status.json`` every status interval and draws the charts (head and lag per
replica over the last hour) as inline SVG.
"""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

from faust import web

from pipeline.worker import app, replica_id, settings
from replica.readiness import broker_silence, checks, sync_progress
from replica.state import replica_state
from tables import status

PAGE = Path(__file__).with_name("status.html")


def status_data(now: float | None = None) -> dict[str, Any]:
    """This replica's row with its checks, every replica's row, and the chart history."""
    now = time.time() if now is None else now
    replica = replica_state()
    me = status.status_row(replica, now)
    progress = sync_progress(replica)
    me.update(
        checks=[{"name": c.name, "ok": c.ok, "value": c.value, "limit": c.limit, "detail": c.detail} for c in checks(replica, now)],
        heartbeat_age=None if replica.heartbeat is None else round(now - replica.heartbeat.clock, 3),
        broker_silence=broker_silence(replica, now),
        strays=sum(replica.strays_skipped.values()),
        last_stray=None if replica.last_stray is None else vars(replica.last_stray),
        syncing=None if progress is None else {
            "startingBlock": progress.starting_block, "currentBlock": progress.current_block, "highestBlock": progress.highest_block,
        },
    )
    rows = status.rows(now)
    if not any(row["replica"] == replica_id for row in rows):
        rows = sorted([*rows, {**me, "age": 0.0, "stale": False}], key=lambda row: str(row["replica"]))
    return {
        "now": now,
        "interval": settings.status_interval,
        "cluster": settings.cluster,
        "replica": replica_id,
        "self": me,
        "replicas": rows,
        "history": status.history.as_json(),
    }


@cache
def _template() -> str:
    return PAGE.read_text(encoding="utf-8")


def render_page(data: dict[str, Any]) -> str:
    """The page with ``data`` inline (``</`` escaped so no value can close the script element)."""
    inline = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return _template().replace("__INITIAL__", inline, 1)


@app.page("/status")
class StatusPage(web.View):
    async def get(self, request: web.Request) -> web.Response:
        return self.html(render_page(status_data()))


@app.page("/status.json")
class StatusJson(web.View):
    async def get(self, request: web.Request) -> web.Response:
        return self.json(status_data())
