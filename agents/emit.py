"""The emitter of this worker, when ``EMIT_TARGETS`` is set: the transaction topic to the network.

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

from pipeline.worker import app, names, settings
from replica.emitter import Emitter, Forwarder, RetryPolicy, make_targets
from tables import emitted

log = logging.getLogger("ethercattle.emitter")


async def dead_letter(key: bytes | None, value: bytes) -> None:
    await app.producer.send_and_wait(names.dead_letters, key, value, None, None, None)


def consumer_args() -> dict[str, object]:
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "group_id": names.emitter_group(settings.emitter_name),
        "client_id": f"ethercattle-emitter-{settings.emitter_name}-{settings.replica_id}",
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "session_timeout_ms": int(settings.broker_session_timeout * 1000),
        "heartbeat_interval_ms": int(settings.broker_heartbeat_interval * 1000),
        "rebalance_timeout_ms": int(settings.broker_rebalance_timeout * 1000),
        "max_poll_interval_ms": int(settings.broker_max_poll_interval * 1000),
    }


if emitted.ENABLED:

    @app.service
    class EmitterService(mode.Service):
        """Runs the emitter once the table of settled transactions is complete."""

        emitter: Emitter | None = None

        @mode.Service.task
        async def _run(self) -> None:
            await emitted.recovered.wait()
            policy = RetryPolicy(settings.emit_retry_initial, settings.emit_retry_max, settings.emit_retry_for)
            while not self.should_stop:
                async with aiohttp.ClientSession() as session:
                    targets = make_targets(settings.emit_target_list, session, settings.emit_timeout)
                    self.emitter = Emitter(
                        consumer_args(), names.transactions, Forwarder(targets, policy, settings.emitter_name),
                        emitted.TableDedup(), dead_letter, settings.emit_commit_interval,
                    )
                    try:
                        await self.emitter.run()
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # the broker went away mid-way: start over from the committed offsets
                        log.exception("emitter %s stopped; restarting in 2s", settings.emitter_name)
                await asyncio.sleep(2.0)
