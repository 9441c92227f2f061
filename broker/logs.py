"""Quiet repeats: a broker outage makes the Kafka client log the same error ~150 times a second.

aiokafka logs each failed connect, metadata refresh and fetch at ERROR level as it
retries (seen here: 753 lines in a 5 s outage). ``RepeatFilter`` lets the first
line of each kind through, drops the repeats for ``REPEAT_WINDOW`` seconds, and
then lets one through carrying how many it dropped; so an outage still shows,
with its start and its rate, without burying every other line. A kind is the
logger, level and message template (the node id or address may vary).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

REPEAT_WINDOW = 10.0
"""Seconds between two lines of the same kind."""


class RepeatFilter(logging.Filter):
    """Passes the first record of each kind per window; the next one passed counts the dropped."""

    def __init__(self, window: float = REPEAT_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self._runs: dict[tuple[str, int, str], tuple[float, int]] = {}
        """(logger, level, template) -> (when the last passed, how many dropped since)."""

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        passed_at, dropped = self._runs.get(kind, (None, 0))
        if passed_at is not None and now - passed_at < self.window:
            self._runs[kind] = (passed_at, dropped + 1)
            return False
        self._runs[kind] = (now, 0)
        if dropped:
            record.msg = f"{record.msg} [{dropped} more like this in the last {now - passed_at:.0f}s]"  # type: ignore[operator]
        return True


def quiet_kafka_client_repeats(window: float = REPEAT_WINDOW) -> RepeatFilter:
    """Put one ``RepeatFilter`` on every aiokafka logger (a logger's filters do not see its children's records)."""
    import aiokafka.admin  # noqa: F401 - its loggers too

    repeat = RepeatFilter(window)
    names = [name for name in logging.root.manager.loggerDict if name == "aiokafka" or name.startswith("aiokafka.")]
    for name in names:
        logging.getLogger(name).addFilter(repeat)
    return repeat
