"""Asking a running replica for a snapshot over its web port.

The replica's web port also serves the public JSON-RPC, so the snapshot
endpoint answers only requests signed with the cluster secret: an HMAC-SHA256
over the method, path, body and a timestamp, under a key derived from
``ETHERCATTLE_SECRET`` and the cluster name (never the secret itself on the
wire). A request more than ``MAX_SKEW`` seconds old or new is refused, so a
captured request cannot be replayed later.

``POST /snapshot`` starts a snapshot ({"out": path on the replica's
filesystem, relative paths under its ETHERCATTLE_SNAPSHOT_DIR, "format"}) and
answers 202 with a job id; ``GET /snapshot`` reports the job's progress, and
its manifest once done. ``request_snapshot`` does both and draws the progress.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from cluster import boundedjson
from snapshot.manifest import SnapshotError
from snapshot.progress import Progress

PATH = "/snapshot"
HEADER = "X-Ethercattle-Signature"
MAX_SKEW = 300.0


def _key(secret: str, cluster: str) -> bytes:
    return hmac.new(secret.encode(), b"ethercattle-admin:" + cluster.encode(), hashlib.sha256).digest()


def sign(secret: str, cluster: str, method: str, path: str, body: bytes, now: float | None = None) -> str:
    """The signature header's value: ``<unix time>:<hex HMAC>``."""
    stamp = f"{time.time() if now is None else now:.3f}"
    message = b"\n".join([stamp.encode(), method.upper().encode(), path.encode(), body])
    return f"{stamp}:{hmac.new(_key(secret, cluster), message, hashlib.sha256).hexdigest()}"


def verify(secret: str, cluster: str, header: str | None, method: str, path: str, body: bytes, now: float | None = None) -> bool:
    if not header or ":" not in header:
        return False
    stamp, _, mac = header.partition(":")
    try:
        when = float(stamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - when) > MAX_SKEW:
        return False
    message = b"\n".join([stamp.encode(), method.upper().encode(), path.encode(), body])
    return hmac.compare_digest(mac, hmac.new(_key(secret, cluster), message, hashlib.sha256).hexdigest())


def _call(base_url: str, secret: str, cluster: str, method: str, payload: dict[str, Any] | None) -> tuple[int, Any]:
    body = b"" if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        base_url.rstrip("/") + PATH, data=body if method == "POST" else None, method=method,
        headers={HEADER: sign(secret, cluster, method, PATH, body), "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, boundedjson.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, boundedjson.loads(raw or b"null")
        except ValueError:
            return error.code, {"error": raw.decode(errors="replace")}
    except (urllib.error.URLError, OSError) as exc:
        raise SnapshotError(f"could not reach the replica at {base_url} ({exc}); is its web port right?") from None


def request_snapshot(
    base_url: str, secret: str, cluster: str, out: str, fmt: str, progress: Progress | None = None,
    poll: float = 0.5, timeout: float = 6 * 3600,
) -> dict[str, Any]:
    """Have the replica at ``base_url`` write a snapshot to ``out`` on its own filesystem; its manifest."""
    progress = progress or Progress.null()
    status, answer = _call(base_url, secret, cluster, "POST", {"out": out, "format": fmt})
    if status != 202:
        raise SnapshotError(f"the replica refused the snapshot (HTTP {status}): {(answer or {}).get('error', answer)}")
    job = answer["job"]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            time.sleep(poll)
            status, answer = _call(base_url, secret, cluster, "GET", None)
            current = (answer or {}).get("job") or {}
            if current.get("id") != job["id"]:
                raise SnapshotError(f"the replica lost track of snapshot job {job['id']} (restarted?)")
            step = current.get("progress") or {}
            if step.get("label") and step["label"] != progress.label:
                progress.phase(step["label"], step.get("total"), step.get("unit") or "B")
            progress.update(step.get("done", 0), step.get("total"))
            if current["state"] == "done":
                return current["manifest"]
            if current["state"] == "failed":
                raise SnapshotError(f"the replica's snapshot failed: {current.get('error')}")
    finally:
        progress.close()
    raise SnapshotError(f"the replica's snapshot did not finish within {timeout}s")
