"""Snapshots of this replica while it runs: ``/snapshot`` on demand, and a timer when configured.

``POST /snapshot`` (signed with the cluster secret, see ``snapshot.remote``)
starts a snapshot of the live database and answers 202 with a job; ``GET
/snapshot`` reports the job and the snapshot status. With
``ETHERCATTLE_SNAPSHOT_INTERVAL`` set, a timer snapshots into
``ETHERCATTLE_SNAPSHOT_DIR`` (default ``DATADIR/snapshots``), keeps the newest
``ETHERCATTLE_SNAPSHOT_KEEP`` and warns when the newest one nears Kafka's
retention (``Snapshotter.status`` carries the figures).

Both copy a LevelDB snapshot in a thread: the apply agent keeps writing and
the RPC keeps serving.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust import web

from cluster import boundedjson
from replica.state import ReplicaState
from snapshot.manifest import SnapshotError
from snapshot.remote import HEADER, PATH, verify
from snapshot.service import Busy, Snapshotter

log = logging.getLogger("ethercattle.snapshot")


def register(app: faust.App, replica: ReplicaState, snapshotter: Snapshotter) -> None:
    """The signed ``/snapshot`` endpoint, and the scheduled snapshots when ``SNAPSHOT_INTERVAL`` is set."""
    settings = replica.settings

    def authentic(request: web.Request, method: str, body: bytes) -> bool:
        return verify(settings.secret, settings.cluster, request.headers.get(HEADER), method, PATH, body)

    @app.page(PATH)
    class SnapshotView(web.View):
        """Start a snapshot of this replica (POST) or follow it (GET); both signed with the cluster secret."""

        async def get(self, request: web.Request) -> web.Response:
            if not authentic(request, "GET", b""):
                return self.json({"error": "missing or invalid signature"}, status=401)
            job = snapshotter.job
            return self.json({"job": None if job is None else job.as_dict(), "status": snapshotter.status.as_dict()})

        async def post(self, request: web.Request) -> web.Response:
            body = await request.read()
            if not authentic(request, "POST", body):
                return self.json({"error": "missing or invalid signature"}, status=401)
            try:
                asked: Any = boundedjson.loads(body or b"{}")
                job = snapshotter.start(replica, str(asked["out"]), str(asked.get("format", "tar.gz")))
            except Busy as exc:
                return self.json({"error": str(exc)}, status=409)
            except (SnapshotError, ValueError, KeyError, TypeError) as exc:
                return self.json({"error": f"bad snapshot request: {exc}"}, status=400)
            log.info("snapshot requested into %s (%s)", job.out, job.fmt)
            return self.json({"job": job.as_dict()}, status=202)

    if settings.snapshot_interval:

        async def scheduled_snapshot() -> None:
            """Snapshot when the log moved, keep the newest N, check the newest against Kafka's retention."""
            await snapshotter.tick(replica)

        app.timer(interval=settings.snapshot_interval, name="ethercattle.snapshot.scheduled")(scheduled_snapshot)
