"""A bounded, in-memory history of replica samples: what the status page charts.

One ring buffer per replica id, sized for a window (one hour by default) at the
sampling interval. A sample no newer than the last one of its replica is
dropped, so the unchanged row of a replica that went away adds nothing and its
series ages out of the window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

WINDOW_SECONDS = 3600.0


@dataclass(frozen=True)
class Sample:
    time: float
    """Unix time the replica took the sample."""
    head: int | None
    """Its head block number."""
    lag: int | None
    """Messages behind the log's end."""
    ready: bool
    """Whether /readyz said ready."""


class History:
    """Samples per replica over the last ``window`` seconds."""

    def __init__(self, interval: float, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self.maxlen = int(window / interval) + 2
        self._series: dict[str, deque[Sample]] = {}

    def add(self, replica_id: str, sample: Sample) -> bool:
        """Append a sample; False (and nothing kept) unless it is newer than the replica's last."""
        series = self._series.setdefault(replica_id, deque(maxlen=self.maxlen))
        if series and sample.time <= series[-1].time:
            return False
        series.append(sample)
        return True

    def prune(self, now: float) -> None:
        """Forget samples older than the window, and replicas with none left."""
        horizon = now - self.window
        for replica_id in list(self._series):
            series = self._series[replica_id]
            while series and series[0].time < horizon:
                series.popleft()
            if not series:
                del self._series[replica_id]

    def replicas(self) -> list[str]:
        return sorted(self._series)

    def series(self, replica_id: str) -> list[Sample]:
        return list(self._series.get(replica_id, ()))

    def as_json(self) -> dict[str, list[list[Any]]]:
        """Per replica, its samples as ``[time, head, lag, ready]`` rows (compact for the page)."""
        return {
            replica_id: [[s.time, s.head, s.lag, s.ready] for s in series]
            for replica_id, series in sorted(self._series.items())
        }

    def __len__(self) -> int:
        return sum(len(series) for series in self._series.values())


def sample_from_row(row: dict[str, Any]) -> Sample:
    """A sample from a row of the cluster status table."""
    return Sample(float(row["time"]), row.get("head"), row.get("lag"), bool(row.get("ready")))

