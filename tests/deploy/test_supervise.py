"""The supervisor of ``ethercattle up``: a child that exits is reaped and reported; a stop signal ends the wait."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

from deploy.supervise import STOP_SIGNALS, Child, death_notice, wait_for_stop_or_exit


@pytest.fixture(autouse=True)
def signal_mask() -> Iterator[None]:
    """The supervisor blocks the stop signals in this thread; give pytest its mask back."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    yield
    for pending in signal.sigpending() & STOP_SIGNALS:
        signal.sigwait({pending})
    signal.pthread_sigmask(signal.SIG_SETMASK, before)


def child(name: str, code: str, tmp_path: Path) -> Child:
    return Child(name, subprocess.Popen([sys.executable, "-c", code]), tmp_path / f"{name}.log")


def test_a_child_that_exits_is_returned_reaped_with_its_status(tmp_path: Path) -> None:
    sleeper, quitter = child("master", "import time; time.sleep(60)", tmp_path), child("replica-0", "raise SystemExit(3)", tmp_path)
    try:
        dead = wait_for_stop_or_exit([sleeper, quitter], poll=0.05)
        assert dead is quitter and quitter.process.returncode == 3
        assert death_notice(quitter) == f"ethercattle: replica-0 exited with status 3; see {tmp_path / 'replica-0.log'}. Stopping everything."
    finally:
        sleeper.process.kill()
        sleeper.process.wait()


def test_a_killed_child_is_reported_by_its_signal(tmp_path: Path) -> None:
    victim = child("replica-0", "import time; time.sleep(60)", tmp_path)
    victim.process.send_signal(signal.SIGKILL)
    assert wait_for_stop_or_exit([victim], poll=0.05) is victim
    assert "replica-0 was killed by SIGKILL" in death_notice(victim)


def test_a_stop_signal_ends_the_wait_with_no_dead_child(tmp_path: Path) -> None:
    sleeper = child("master", "import time; time.sleep(60)", tmp_path)
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # to this thread: others do not block it
        assert wait_for_stop_or_exit([sleeper], poll=0.05) is None
        assert sleeper.process.poll() is None
    finally:
        sleeper.process.kill()
        sleeper.process.wait()
