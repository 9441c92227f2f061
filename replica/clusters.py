"""Every cluster behind the balancer on one status page: each cluster's summary, as one replica sees it.

Clusters share nothing (each has its own master, topics and often its own
broker), so a replica learns how another cluster stands only by asking one of
that cluster's replicas (``replica.peers``). What a cluster says about itself is
its summary, served at ``/status/cluster.json``::

    {"cluster": name, "reachable": true, "error": null, "answered_by": replica id, "time": unix time,
     "master": {"head": number, "heartbeat_age": seconds, "alive": bool},
     "head": number, "lag": messages, "ready": n, "live": n,
     "replicas": [{"replica", "ready", "stale", "head", "master_head", "lag", "age", "reason", "halted"}]}

A cluster that could not be asked keeps its name, ``reachable: false`` and the
``error``, and nothing else. A peer's answer is data from another host, so it is
rebuilt field by field (known fields, checked types, bounded sizes), never
passed through.
"""

from __future__ import annotations

import math
from typing import Any

Summary = dict[str, Any]

MAX_REPLICAS = 256
"""Most replica rows kept from one peer's answer."""
MAX_TEXT = 300
"""Longest text kept from a peer's answer (names, reasons)."""
ROW_FIELDS = ("replica", "ready", "stale", "head", "master_head", "lag", "age", "reason", "halted")
"""What the page shows of each replica of a cluster."""


class PeerAnswerError(ValueError):
    """A peer's answer is not a summary of the cluster it was named for."""


def cluster_summary(page: dict[str, Any]) -> Summary:
    """The summary of this replica's cluster from its status page data (``StatusBoard.page``)."""
    me = page["self"]
    heartbeat = next((check for check in me["checks"] if check["name"] == "heartbeat_age"), None)
    return _summarise(
        cluster=page["cluster"], answered_by=page["replica"], time=page["now"],
        heartbeat_age=me["heartbeat_age"], master_alive=bool(heartbeat and heartbeat["ok"]),
        replicas=[{field: row.get(field) for field in ROW_FIELDS} for row in page["replicas"]],
    )


def unreachable(cluster: str, error: str) -> Summary:
    """A cluster this replica could not ask: its name and why."""
    return {"cluster": cluster, "reachable": False, "error": _text(error)}


def peer_summary(cluster: str, answer: Any) -> Summary:
    """The summary in a peer's answer, rebuilt from its known fields; raises ``PeerAnswerError``.

    The answer must name ``cluster``: a URL that reaches a replica of another
    cluster (or this one) is a misconfiguration the page must show, not hide.
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("replicas"), list):
        raise PeerAnswerError("the answer is not a cluster summary")
    if answer.get("cluster") != cluster:
        raise PeerAnswerError(f"the answer is cluster {_text(answer.get('cluster'))!r}, not {cluster!r}")
    master = answer.get("master")
    if not isinstance(master, dict):
        master = {}
    return _summarise(
        cluster=cluster, answered_by=_text(answer.get("answered_by")), time=_number(answer.get("time")),
        heartbeat_age=_number(master.get("heartbeat_age")), master_alive=master.get("alive") is True,
        replicas=[_row(row) for row in answer["replicas"][:MAX_REPLICAS] if isinstance(row, dict)],
    )


def _summarise(cluster: str, answered_by: str | None, time: float | None, heartbeat_age: float | None,
               master_alive: bool, replicas: list[dict[str, Any]]) -> Summary:
    """One cluster's figures from its replicas' rows: rows that went stale count for nothing."""
    live = [row for row in replicas if not row["stale"]]
    return {
        "cluster": cluster,
        "reachable": True,
        "error": None,
        "answered_by": answered_by,
        "time": time,
        "master": {"head": _highest(live, "master_head"), "heartbeat_age": heartbeat_age, "alive": master_alive},
        "head": _highest(live, "head"),
        "lag": _highest(live, "lag"),
        "ready": sum(1 for row in live if row["ready"]),
        "live": len(live),
        "replicas": replicas,
    }


def _highest(rows: list[dict[str, Any]], field: str) -> int | None:
    values = [row[field] for row in rows if isinstance(row[field], int)]
    return max(values) if values else None


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "replica": _text(row.get("replica")) or "?",
        "ready": row.get("ready") is True,
        "stale": row.get("stale") is True,
        "head": _count(row.get("head")),
        "master_head": _count(row.get("master_head")),
        "lag": _count(row.get("lag")),
        "age": _number(row.get("age")),
        "reason": _text(row.get("reason")),
        "halted": _text(row.get("halted")),
    }


def _text(value: Any) -> str | None:
    return value[:MAX_TEXT] if isinstance(value, str) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None  # NaN and Infinity would make the page's JSON unreadable to a browser
    return float(value)
