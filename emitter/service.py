"""The emitter of a worker, when ``EMIT_TARGETS`` is set: the transaction topic to the network.

Why not a Faust agent: an agent consumes in the app's consumer group, and a
replica's app id (its group) is its own. Every replica running the emitter
would then read every partition and send every transaction once per replica,
and "workers of one emitter share the partitions" could not hold. So the
emitter is a service of the worker with its own aiokafka consumer in the
emitter's group (``TopicNames.emitter_group(EMITTER_NAME)``): any number of
workers, replicas or not, join it by configuration; several emitters (other
names, other targets) read the same topic independently. Its table of settled
transactions is a Faust table (``tables.emitted``), and it produces dead
letters with the app's producer.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import mode

from broker import clients
from cluster.settings import Settings
from cluster.topics import TopicNames
from emitter.forwarder import (
    DeadLetter,
    Emitter,
    EmitterMetrics,
    Forwarder,
    RetryPolicy,
    make_targets,
)
from tables.emitted import EmittedTable

log = logging.getLogger("ethercattle.emitter")


class EmitterService(mode.Service):
    """Runs the emitter once its table of settled transactions is complete; restarts it when the broker goes away.

    Arguments:
        settings: the worker's settings (targets, retries, the emitter's name and group timings).
        table: the emitter's table of settled transactions.
        dead_letter: produces one record on the dead-letter topic.
        metrics: the emitter's counters (on the worker's registry).
    """

    def __init__(self, settings: Settings, table: EmittedTable, dead_letter: DeadLetter, metrics: EmitterMetrics) -> None:
        super().__init__()
        self.settings = settings
        self.table = table
        self.dead_letter = dead_letter
        self.metrics = metrics
        self.emitter: Emitter | None = None
        self._starting_over = False

    def start_over(self) -> None:
        """The master created the cluster's topics anew: the emitter reads the transaction topic from its start."""
        if self.emitter is not None:
            self.emitter.start_over()
        else:
            self._starting_over = True

    @mode.Service.task
    async def _run(self) -> None:
        settings, names = self.settings, TopicNames(self.settings.cluster)
        await self.table.recovered.wait()
        policy = RetryPolicy(settings.emit_retry_initial, settings.emit_retry_max, settings.emit_retry_for)
        group = names.emitter_group(settings.emitter_name)
        client_id = f"ethercattle-emitter-{settings.emitter_name}-{settings.replica_id}"
        while not self.should_stop:
            async with aiohttp.ClientSession() as session:
                targets = make_targets(settings.emit_target_list, session, settings.emit_timeout)
                self.emitter = Emitter(
                    lambda: clients.group_member(settings, group, client_id), names.transactions,
                    Forwarder(targets, policy, settings.emitter_name, metrics=self.metrics),
                    self.table, self.dead_letter, settings.emit_commit_interval,
                )
                if self._starting_over:
                    self._starting_over = False
                    self.emitter.start_over()
                try:
                    await self.emitter.run()
                except asyncio.CancelledError:
                    raise
                except Exception:  # the broker went away mid-way: start over from the committed offsets
                    log.exception("emitter %s stopped; restarting in 2s", settings.emitter_name)
                finally:
                    self.emitter = None
            await asyncio.sleep(2.0)
