"""Liveness and readiness views of a replica worker: ``/healthz`` and ``/readyz``."""

from __future__ import annotations

from typing import Any

from faust import web

from pipeline.worker import app
from replica.readiness import report
from replica.state import ReplicaState, replica_state


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


@app.page("/healthz")
class Healthz(web.View):
    """Alive: the process answers and its apply agent has not crashed (a halt is not death)."""

    async def get(self, request: web.Request) -> web.Response:
        alive = not any(agent.crashed for agent in app.agents.values())
        return self.json({"alive": alive, **position(replica_state())}, status=200 if alive else 500)


@app.page("/readyz")
class Readyz(web.View):
    """Ready for traffic: 200 with every check, or 503 naming the ones that failed."""

    async def get(self, request: web.Request) -> web.Response:
        replica = replica_state()
        body = {**report(replica), **position(replica)}
        return self.json(body, status=200 if body["ready"] else 503)
