"""A progress line on stderr for long steps: no dependency, no noise in logs.

On a terminal the line redraws in place (``\\r``) at most ten times a second;
elsewhere (a container's log, a CI run) it prints a plain line every few
seconds, so the log shows progress without a flood. ``Progress.null()`` draws
nothing, for callers without a terminal to talk to (the worker's timer).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"  # pragma: no cover - the loop always returns


def _amount(value: float, unit: str) -> str:
    return human_bytes(value) if unit == "B" else f"{int(value):,} {unit}"


class Progress:
    """``update(done)`` as work proceeds, ``close()`` at the end (prints the final line)."""

    WIDTH = 24

    def __init__(
        self,
        label: str,
        total: float | None = None,
        unit: str = "B",
        stream: TextIO | None = None,
        interactive: bool | None = None,
        quiet: bool = False,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.quiet = quiet
        self.done = 0.0
        self.detail = ""
        self.started = time.monotonic()
        self._drawn = 0.0 if self.interactive else self.started  # logs: a first line after a few seconds
        self._drawn_done: float | None = None
        self._every = 0.1 if self.interactive else 5.0
        self._closed = False

    @classmethod
    def null(cls) -> "Progress":
        return cls("", quiet=True)

    def update(self, done: float, total: float | None = None, detail: str = "") -> None:
        self.done = done
        if total is not None:
            self.total = total
        if detail:
            self.detail = detail
        now = time.monotonic()
        if not self.quiet and now - self._drawn >= self._every:
            self._drawn = now
            self._draw(final=False)

    def phase(self, label: str, total: float | None = None, unit: str = "B") -> None:
        """Finish the current step's line and start the next step's (same stream, fresh counters)."""
        if self.done or self._drawn_done is not None:
            self.close()
        self.label, self.total, self.unit, self.done, self.detail = label, total, unit, 0.0, ""
        self.started, self._drawn_done, self._closed = time.monotonic(), None, False
        self._drawn = 0.0 if self.interactive else self.started

    def advance(self, amount: float) -> None:
        self.update(self.done + amount)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        parts = [f"{self.label:<10}"]
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * self.WIDTH)
            parts.append("[" + "#" * filled + "-" * (self.WIDTH - filled) + f"] {fraction * 100:5.1f}%")
            parts.append(f"{_amount(self.done, self.unit)} / {_amount(self.total, self.unit)}")
        else:
            parts.append(_amount(self.done, self.unit))
        parts.append(f"{_amount(rate, self.unit)}/s")
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f"eta {int((self.total - self.done) / rate)}s")
        else:
            parts.append(f"{elapsed:.1f}s")
        if self.detail:
            parts.append(self.detail)
        return "  ".join(parts)

    def _draw(self, final: bool) -> None:
        if final and not self.interactive and self._drawn_done == self.done:
            return  # that very line is in the log already
        self._drawn_done = self.done
        text = self.line()
        if self.interactive:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.quiet and (self.done or self._drawn_done is not None):
            self._draw(final=True)
