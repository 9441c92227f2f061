"""``/metrics``: the replica's Prometheus metrics in the text exposition format."""

from __future__ import annotations

from faust import web

from pipeline.worker import app
from replica.metrics import CONTENT_TYPE, exposition, watch
from replica.state import replica_state


@app.page("/metrics")
class Metrics(web.View):
    """Everything ``replica.metrics`` registers, rendered at scrape time."""

    async def get(self, request: web.Request) -> web.Response:
        watch(replica_state())
        return self.bytes(exposition(), headers={"Content-Type": CONTENT_TYPE})
