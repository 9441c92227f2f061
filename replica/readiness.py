"""Readiness: should this replica receive traffic? Every check, its value and its limit.

Liveness (``/healthz``) is separate: a halted or lagging replica is alive but
not ready. The JSON-RPC answers an error whenever ``not_ready_reason`` is set
(the RPC's readiness hook), and ``sync_progress`` is what ``eth_syncing`` reports.

The checks, in the order ``/readyz`` lists them:

- ``not_halted``: the apply agent has not stopped on a record it may not apply
  (forged, foreign cluster, corrupt, gap) or on a lost or reset log;
- ``caught_up``: the replica reached the log's end at least once since it started;
- ``shared_views``: its copies of the cluster-wide topics (the pending view of
  the transaction topic, the filter store) read up to the end they first saw: a
  replica that answered a "pending" nonce or a filter poll before that would miss
  what other replicas acknowledged;
- ``broker``: the broker answered the consumer's fetches (or the agent applied
  something) within ``MAX_BROKER_SILENCE`` seconds: a broker that went away
  freezes the log's end, so lag alone would look fine;
- ``lag``: at most ``MAX_LAG`` messages behind the log's end;
- ``heartbeat_age``: the last master heartbeat applied is at most ``MAX_HEARTBEAT_AGE`` old;
- ``block_age``: the head block is at most ``MAX_BLOCK_AGE`` old (only when set).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from chain.head import SyncProgress, read_head
from replica.state import ReplicaState


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    value: Any
    limit: Any
    detail: str = ""


def _forged_hint(replica: ReplicaState, beat_age: float | None) -> str:
    """Why heartbeats may never come: this replica cannot authenticate the log (its secret differs)."""
    forged = replica.strays_skipped.get("forged", 0)
    if forged == 0 or (beat_age is not None and beat_age <= replica.settings.max_heartbeat_age):
        return ""
    return f"; {forged} message(s) of this cluster failed authentication and were skipped: check ETHERCATTLE_SECRET"


def broker_silence(replica: ReplicaState, now: float) -> float | None:
    """Seconds since the broker last answered a fetch or the agent last applied a group."""
    contact = max(replica.fetched_at or 0.0, replica.applied_at or 0.0)
    return None if contact == 0.0 else round(max(now - contact, 0.0), 3)


def checks(replica: ReplicaState, now: float | None = None) -> list[Check]:
    now = time.time() if now is None else now
    settings = replica.settings
    lag = replica.lag
    beat_age = None if replica.heartbeat is None else round(now - replica.heartbeat.clock, 3)
    silence = broker_silence(replica, now)
    broker_ok = silence is not None and silence <= settings.max_broker_silence
    if silence is None:
        broker_detail = "the broker has not answered a fetch yet"
    elif not broker_ok:
        broker_detail = (
            f"no answer from the broker {settings.broker} for {silence:.1f}s: it is unreachable or down "
            f"(the log's end and lag are unknown)"
        )
    else:
        broker_detail = ""
    loading = [name for name, view in replica.shared_views.items() if not view.loaded]
    result = [
        Check("not_halted", replica.halted is None, None if replica.halted is None else replica.halted.reason, None,
              "" if replica.halted is None else str(replica.halted)),
        Check("caught_up", replica.caught_up, replica.caught_up, True,
              "" if replica.caught_up else "initial catch-up to the log's end not finished"),
        Check("shared_views", not loading, loading or None, None,
              f"still loading: {', '.join(loading)}" if loading else ""),
        Check("broker", broker_ok, silence, settings.max_broker_silence, broker_detail),
        Check("lag", lag is not None and lag <= settings.max_lag, lag, settings.max_lag,
              "log end unknown (broker unreachable?)" if lag is None else ""),
        Check("heartbeat_age", beat_age is not None and beat_age <= settings.max_heartbeat_age, beat_age,
              settings.max_heartbeat_age,
              ("no master heartbeat seen yet" if beat_age is None
               else "" if beat_age <= settings.max_heartbeat_age
               else "the master's heartbeats stopped: master down, or the log is not delivered") + _forged_hint(replica, beat_age)),
    ]
    if settings.max_block_age is not None:
        head = read_head(replica.db)
        age = None if head is None else round(now - head.timestamp, 3)
        result.append(Check("block_age", age is not None and age <= settings.max_block_age, age, settings.max_block_age,
                            "no head block yet" if age is None else ""))
    return result


def _describe(check: Check) -> str:
    return f"{check.name}={check.value} (limit {check.limit}){': ' + check.detail if check.detail else ''}"


def not_ready_reason(replica: ReplicaState, now: float | None = None) -> str | None:
    """None when ready; otherwise the failed checks in one line (the RPC's readiness hook)."""
    failed = [check for check in checks(replica, now) if not check.ok]
    if not failed:
        return None
    return "; ".join(_describe(c) for c in failed)


def highest_block(replica: ReplicaState) -> int | None:
    """The master's head as far as this replica knows: the newest heartbeat seen on the log."""
    beats = [beat for beat in (replica.tail_heartbeat, replica.heartbeat) if beat is not None]
    if not beats:
        return None
    return max(beats, key=lambda beat: beat.sequence).head_number


def sync_progress(replica: ReplicaState) -> SyncProgress | None:
    """``eth_syncing``: None once caught up and within ``MAX_LAG``, else (starting, current, highest).

    ``starting_block`` is the head when this catch-up began (the start of the
    process, or the moment a caught-up replica fell more than ``MAX_LAG`` behind);
    ``highest_block`` is the master's head from the newest heartbeat read on the
    log (``tail_heartbeat``, read at the log's end while catching up), never
    below ``current_block``.
    """
    lag = replica.lag
    syncing = not replica.caught_up or lag is None or lag > replica.settings.max_lag
    current = read_head(replica.db)
    current_number = 0 if current is None else current.number
    if not syncing:
        replica.sync_started_at_block = None
        return None
    if replica.sync_started_at_block is None:
        replica.sync_started_at_block = current_number
    highest = max(highest_block(replica) or 0, current_number)
    return SyncProgress(replica.sync_started_at_block, current_number, highest)


def report(replica: ReplicaState, now: float | None = None) -> dict[str, Any]:
    all_checks = checks(replica, now)
    progress = sync_progress(replica)
    return {
        "ready": all(c.ok for c in all_checks),
        "reason": "; ".join(_describe(c) for c in all_checks if not c.ok) or None,
        "checks": [asdict(c) for c in all_checks],
        "syncing": None if progress is None else {
            "startingBlock": progress.starting_block,
            "currentBlock": progress.current_block,
            "highestBlock": progress.highest_block,
        },
    }


class ReadinessHook:
    """The RPC's readiness hook: None when the replica may serve, else why not (the failed checks, one line).

    The verdict is reused for ``max_age`` seconds: running every check cost about a
    tenth of a cheap call's CPU (eth_blockNumber under load), while what the checks
    read moves in seconds (heartbeat and broker ages) or is final (a halt), so a
    call may be answered at most ``max_age`` after the replica turned unready.
    """

    def __init__(self, replica: ReplicaState, max_age: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.replica = replica
        self.max_age = max_age
        self.clock = clock
        self._verdict: str | None = None
        self._at = float("-inf")

    def __call__(self) -> str | None:
        now = self.clock()
        if now - self._at >= self.max_age:
            self._verdict, self._at = not_ready_reason(self.replica), now
        return self._verdict


class ApplyBacklog:
    """The RPC's load-shedding hook: why it should step aside for the apply agent (the lag past
    ``threshold`` messages, a quarter of ``MAX_LAG``, so requests are shed before the replica turns
    unready); else None."""

    def __init__(self, replica: ReplicaState, threshold: int) -> None:
        self.replica = replica
        self.threshold = threshold

    def __call__(self) -> str | None:
        lag = self.replica.lag
        if lag is None or lag <= self.threshold:
            return None
        return f"applying the log first: {lag} messages behind"


class ReplicaSyncStatus:
    """The RPC's eth_syncing status: false once caught up, else (startingBlock, currentBlock, highestBlock)."""

    def __init__(self, replica: ReplicaState) -> None:
        self.replica = replica

    def progress(self) -> SyncProgress | None:
        return sync_progress(self.replica)
