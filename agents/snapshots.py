"""Snapshots of this replica while it runs: ``/snapshot`` on demand, and a timer when configured.

``POST /snapshot`` (signed with the cluster secret, see ``snapshot.remote``)
starts a snapshot of the live database and answers 202 with a job; ``GET
/snapshot`` reports the job and the snapshot status. With
``ETHERCATTLE_SNAPSHOT_INTERVAL`` set, a timer snapshots into
``ETHERCATTLE_SNAPSHOT_DIR`` (default ``DATADIR/snapshots``), keeps the newest
``ETHERCATTLE_SNAPSHOT_KEEP`` and warns when the newest one nears Kafka's
retention (``snapshot.service.status`` carries the figures for metrics).

Both copy a LevelDB snapshot in a thread: the apply agent keeps writing and
the RPC keeps serving. The ``snapshot`` package is imported inside the
handlers (and only under a configured interval at import), so a worker never
fails to start for a feature it does not use.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from faust import web

from pipeline.worker import app, settings
from replica.state import replica_state

log = logging.getLogger("ethercattle.snapshot")


@app.page("/snapshot")
class SnapshotView(web.View):
    """Start a snapshot of this replica (POST) or follow it (GET); both signed with the cluster secret."""

    async def _authentic(self, request: web.Request, method: str, body: bytes) -> bool:
        from snapshot.remote import HEADER, PATH, verify

        return verify(settings.secret, settings.cluster, request.headers.get(HEADER), method, PATH, body)

    async def get(self, request: web.Request) -> web.Response:
        from snapshot.service import snapshotter, status

        if not await self._authentic(request, "GET", b""):
            return self.json({"error": "missing or invalid signature"}, status=401)
        job = snapshotter(settings).job
        return self.json({"job": None if job is None else job.as_dict(), "status": status.as_dict()})

    async def post(self, request: web.Request) -> web.Response:
        from snapshot.manifest import SnapshotError
        from snapshot.service import Busy, snapshotter

        body = await request.read()
        if not await self._authentic(request, "POST", body):
            return self.json({"error": "missing or invalid signature"}, status=401)
        try:
            asked: Any = json.loads(body or b"{}")
            job = snapshotter(settings).start(replica_state(), str(asked["out"]), str(asked.get("format", "tar.gz")))
        except Busy as exc:
            return self.json({"error": str(exc)}, status=409)
        except (SnapshotError, ValueError, KeyError, TypeError) as exc:
            return self.json({"error": f"bad snapshot request: {exc}"}, status=400)
        log.info("snapshot requested into %s (%s)", job.out, job.fmt)
        return self.json({"job": job.as_dict()}, status=202)


if settings.snapshot_interval:
    from snapshot.service import snapshotter

    @app.timer(interval=settings.snapshot_interval)
    async def scheduled_snapshot() -> None:
        """Snapshot when the log moved, keep the newest N, check the newest against Kafka's retention."""
        await snapshotter(settings).tick(replica_state())
