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

from cluster.repeats import REPEAT_WINDOW, Repeats


class RepeatFilter(logging.Filter):
    """Passes the first record of each kind per window; the next one passed counts the dropped."""

    def __init__(self, window: float = REPEAT_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.repeats = Repeats(window, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        suffix = self.repeats.admit((record.name, record.levelno, str(record.msg)))
        if suffix is None:
            return False
        if suffix:
            record.msg = f"{record.msg}{suffix}"
        return True


def quiet_kafka_client_repeats(window: float = REPEAT_WINDOW) -> RepeatFilter:
    """Put one ``RepeatFilter`` on every aiokafka logger (a logger's filters do not see its children's records)."""
    import aiokafka.admin  # noqa: F401 - its loggers too

    repeat = RepeatFilter(window)
    names = [name for name in logging.root.manager.loggerDict if name == "aiokafka" or name.startswith("aiokafka.")]
    for name in names:
        logging.getLogger(name).addFilter(repeat)
    return repeat
