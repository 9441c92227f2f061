"""Readiness: should this replica receive traffic? Every check, its value and its limit.

Liveness (``/healthz``) is separate: a halted or lagging replica is alive but
not ready. The JSON-RPC answers an error whenever ``not_ready_reason`` is set.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from eth.db.chain import ChainDB
from eth.exceptions import CanonicalHeadNotFound

from replica.state import ReplicaState


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    value: Any
    limit: Any
    detail: str = ""


def head_timestamp(replica: ReplicaState) -> int | None:
    try:
        return int(ChainDB(replica.db).get_canonical_head().timestamp)
    except CanonicalHeadNotFound:
        return None


def checks(replica: ReplicaState, now: float | None = None) -> list[Check]:
    now = time.time() if now is None else now
    settings = replica.settings
    lag = replica.lag
    beat_age = None if replica.heartbeat is None else round(now - replica.heartbeat.clock, 3)
    result = [
        Check("not_halted", replica.halted is None, None if replica.halted is None else replica.halted.reason, None,
              "" if replica.halted is None else str(replica.halted)),
        Check("caught_up", replica.caught_up, replica.caught_up, True,
              "" if replica.caught_up else "initial catch-up to the log's end not finished"),
        Check("lag", lag is not None and lag <= settings.max_lag, lag, settings.max_lag,
              "log end unknown (broker unreachable?)" if lag is None else ""),
        Check("heartbeat_age", beat_age is not None and beat_age <= settings.max_heartbeat_age, beat_age,
              settings.max_heartbeat_age, "no master heartbeat seen yet" if beat_age is None else ""),
    ]
    if settings.max_block_age is not None:
        stamp = head_timestamp(replica)
        age = None if stamp is None else round(now - stamp, 3)
        result.append(Check("block_age", age is not None and age <= settings.max_block_age, age, settings.max_block_age))
    return result


def not_ready_reason(replica: ReplicaState, now: float | None = None) -> str | None:
    """None when ready; otherwise the failed checks in one line."""
    failed = [check for check in checks(replica, now) if not check.ok]
    if not failed:
        return None
    return "; ".join(f"{c.name}={c.value} (limit {c.limit}){': ' + c.detail if c.detail else ''}" for c in failed)


def report(replica: ReplicaState, now: float | None = None) -> dict[str, Any]:
    all_checks = checks(replica, now)
    return {"ready": all(c.ok for c in all_checks), "checks": [asdict(c) for c in all_checks]}
