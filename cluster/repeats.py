"""Admitting the first of each kind of event per window, and counting the rest.

One client repeating a crashing JSON-RPC request, or a Kafka client retrying through a
broker outage, would otherwise write the same log line (or traceback) hundreds of
times a second. ``Repeats`` says which event to log and how many were dropped since.
"""

from __future__ import annotations

import time
from typing import Callable, Hashable

REPEAT_WINDOW = 10.0
"""Seconds between two lines of the same kind."""

MAX_KINDS = 1024
"""Kinds remembered at once; the oldest is forgotten first (a log message carrying a value
in its text would otherwise make a new kind per event, forever)."""


class Repeats:
    """Admits the first event of each kind per window; the next one admitted learns how many were dropped."""

    def __init__(self, window: float = REPEAT_WINDOW, clock: Callable[[], float] = time.monotonic,
                 max_kinds: int = MAX_KINDS) -> None:
        self.window = window
        self.clock = clock
        self.max_kinds = max_kinds
        self._runs: dict[Hashable, tuple[float, int]] = {}
        """kind -> (when the last was admitted, how many dropped since)."""

    def admit(self, kind: Hashable) -> str | None:
        """None to drop this event; else a suffix for its line ("" or the count of repeats dropped)."""
        now = self.clock()
        passed_at, dropped = self._runs.get(kind, (None, 0))
        if passed_at is not None and now - passed_at < self.window:
            self._runs[kind] = (passed_at, dropped + 1)
            return None
        self._runs.pop(kind, None)
        while len(self._runs) >= self.max_kinds:
            del self._runs[next(iter(self._runs))]
        self._runs[kind] = (now, 0)
        if not dropped or passed_at is None:
            return ""
        return f" [{dropped} more like this in the last {now - passed_at:.0f}s]"

    def __len__(self) -> int:
        return len(self._runs)
