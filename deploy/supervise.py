"""Watching the processes of ``ethercattle up``: a child that dies is reported, not left a zombie.

``ethercattle up`` is a supervisor of the simplest kind: it waits for Ctrl-C
(or SIGTERM) and, meanwhile, for any of its children to exit. A child that
exits is reaped at once, reported with its exit status and its log, and the
whole local cluster stops with a non-zero status, so a broken replica is never
served behind a cheerful banner.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
POLL = 0.5
"""Seconds between two looks at the children while no stop signal arrives."""


@dataclass(frozen=True)
class Child:
    """A supervised process: what it is called and where it logs."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def exit_status(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"


def wait_for_stop_or_exit(children: list[Child], poll: float = POLL) -> Child | None:
    """Block until a stop signal arrives (None) or a child exits (that child, reaped).

    The stop signals are blocked in this thread and taken with ``sigtimedwait``,
    so Ctrl-C never interrupts the cleanup that follows.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    while True:
        for child in children:
            if child.process.poll() is not None:
                return child
        if signal.sigtimedwait(STOP_SIGNALS, poll) is not None:
            return None


def death_notice(child: Child) -> str:
    return f"ethercattle: {child.name} {child.exit_status()}; see {child.log}. Stopping everything."
