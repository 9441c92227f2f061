"""The replica worker's operator pages: ``/healthz``, ``/readyz``, ``/metrics``, ``/status``, ``/status.json``,
``/status/cluster.json``.

``/status`` is one HTML page (``status.html``, no external assets) that carries
its first data inline, so it renders at once, offline and without JavaScript
fetches; its script then refreshes from ``/status.json`` every status interval
and draws the charts (head and lag per replica over the last hour) as inline SVG.
Both show every cluster: this one's summary first, then each peer cluster's
(``replica.peers``). ``/status/cluster.json`` is this cluster's summary alone,
what peers ask for; it asks nobody, so pages showing each other cannot loop.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import faust
from faust import web

from replica.clusters import cluster_summary
from replica.metrics import CONTENT_TYPE, ReplicaMetrics
from replica.peers import CLUSTER_PATH, PeerClusters
from replica.readiness import report
from replica.state import ReplicaState
from replica.status import StatusBoard

PAGE = Path(__file__).with_name("status.html")


def position(replica: ReplicaState) -> dict[str, Any]:
    stored = replica.applier.position
    return {
        "replica": replica.settings.replica_id,
        "cluster": replica.settings.cluster,
        "sequence": stored.sequence,
        "next_offset": stored.next_offset,
        "log_end": replica.log_end,
        "lag": replica.lag,
        "records_applied": replica.records_applied,
        "duplicates_skipped": replica.duplicates_skipped,
        "bytes_applied": replica.bytes_applied,
        "strays_skipped": sum(replica.strays_skipped.values()),
        "last_stray": None if replica.last_stray is None else vars(replica.last_stray),
        "halted": None if replica.halted is None else str(replica.halted),
    }


@cache
def _template() -> str:
    return PAGE.read_text(encoding="utf-8")


def render_page(data: dict[str, Any]) -> str:
    """The page with ``data`` inline (``</`` escaped so no value can close the script element)."""
    inline = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return _template().replace("__INITIAL__", inline, 1)


async def every_cluster(board: StatusBoard, peers: PeerClusters) -> dict[str, Any]:
    """The status page's data: this replica and its cluster, and ``clusters``, this cluster's summary then its peers'."""
    data = board.page()
    data["clusters"] = [{**cluster_summary(data), "self": True}, *await peers.summaries()]
    return data


def register(app: faust.App, replica: ReplicaState, metrics: ReplicaMetrics, board: StatusBoard,
             peers: PeerClusters) -> None:
    """Mount the operator pages of ``replica`` on ``app``'s web server."""

    @app.page("/healthz")
    class Healthz(web.View):
        """Alive: the process answers and its apply agent has not crashed (a halt is not death)."""

        async def get(self, request: web.Request) -> web.Response:
            alive = not any(agent.crashed for agent in app.agents.values())
            return self.json({"alive": alive, **position(replica)}, status=200 if alive else 500)

    @app.page("/readyz")
    class Readyz(web.View):
        """Ready for traffic: 200 with every check, or 503 naming the ones that failed."""

        async def get(self, request: web.Request) -> web.Response:
            body = {**report(replica), **position(replica)}
            return self.json(body, status=200 if body["ready"] else 503)

    @app.page("/metrics")
    class Metrics(web.View):
        """The replica's Prometheus metrics in the text exposition format, read at scrape time."""

        async def get(self, request: web.Request) -> web.Response:
            return self.bytes(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    @app.page("/status")
    class StatusPage(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.html(render_page(await every_cluster(board, peers)))

    @app.page("/status.json")
    class StatusJson(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.json(await every_cluster(board, peers))

    @app.page(CLUSTER_PATH)
    class ClusterJson(web.View):
        """This cluster's summary only, for the other clusters' status pages."""

        async def get(self, request: web.Request) -> web.Response:
            return self.json(cluster_summary(board.page()))
