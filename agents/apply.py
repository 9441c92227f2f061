"""The apply agent: the CDC log into this replica's LevelDB.

Faust owns the consumer, but not the position: on assignment the agent checks
the stored position against the log (and refuses to start when the log cannot
continue it), then seeks there. Groups of messages are applied in one LevelDB
write each. On a message it may not apply the agent halts loudly and for good:
it logs what and where, the replica turns unready, and it never skips.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.types import TP, EventT, StreamT

from pipeline.worker import app, cdc_topic, settings
from replica.applier import ApplyHalted
from replica.resume import ResumeRefused, check_resume, probe_log
from replica.state import replica_state

log = logging.getLogger("ethercattle.apply")


@app.on_partitions_assigned.connect
async def resume_from_stored_position(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
    replica = replica_state()
    topic = cdc_topic.get_topic_name()
    for tp in assigned:
        if tp.topic != topic:
            continue
        position = replica.applier.position
        probe = await probe_log(settings.bootstrap_servers, topic, position)
        try:
            check_resume(position, probe, topic)
        except ResumeRefused as refused:
            log.critical("refusing to start: %s", refused)
            await app.crash(refused)
            raise
        replica.observe_log_end(probe.end)
        await app.consumer.seek(tp, position.next_offset)
        replica.resumed = True
        log.info(
            "resuming %s at offset %d (record %d); log holds offsets %d..%d",
            topic, position.next_offset, position.sequence, probe.earliest, probe.end,
        )


@app.agent(cdc_topic)
async def apply(stream: StreamT) -> None:
    replica = replica_state()
    within = settings.apply_within_ms / 1000
    async for events in stream.take_events(settings.apply_batch_messages, within=within):
        if replica.halted is not None:
            continue
        try:
            outcome = replica.applier.apply([(event.message.offset, event.message.value) for event in events])
        except ApplyHalted as halted:
            replica.halted = halted
            log.critical(
                "HALTED: %s record at offset %d of %s: %s. This replica applies nothing more and is unready; "
                "it needs a replacement from a good snapshot, or a corrected log.",
                halted.reason, halted.offset, cdc_topic.get_topic_name(), halted.detail,
            )
            continue
        replica.observe_log_end(_log_end(events))
        replica.applied(outcome)


def _log_end(events: list[EventT]) -> int | None:
    tp = events[-1].message.tp
    try:
        return app.consumer.highwater(tp)
    except Exception:  # the consumer may not know a high watermark yet
        return None


@app.timer(interval=1.0)
async def track_log_end() -> None:
    """Keep the log's end current while idle, so lag and readiness follow the log, not our last group."""
    replica = replica_state()
    if not replica.resumed:
        return
    for tp in app.consumer.assignment():
        if tp.topic == cdc_topic.get_topic_name():
            try:
                replica.observe_log_end(app.consumer.highwater(tp))
            except Exception:
                await asyncio.sleep(0)
