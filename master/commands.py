"""The master's commands: import a chain, or run a development chain."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from chain.importer import ImportProgress, import_chain
from master.node import MasterNode
from pipeline.settings import Settings

log = logging.getLogger("ethercattle.master")


async def run_import(settings: Settings, genesis: Path, chain: Path) -> int:
    """Import every block with validation, then wait until the broker has acknowledged every record."""
    async with MasterNode(settings) as node:
        assert node.db is not None

        def progress(step: ImportProgress) -> None:
            done = step.imported + step.skipped
            if done == step.total or done % 100 == 0:
                log.info("block %d: %d of %d blocks done (%d already present)", step.number, done, step.total, step.skipped)

        result = await asyncio.to_thread(import_chain, node.db, genesis, chain, progress)
        log.info(
            "chain imported: %d new blocks, %d already present, head %d 0x%s in %.2fs; waiting for the broker's acknowledgements",
            result.imported, result.skipped, result.head_number, result.head_hash.hex(), result.seconds,
        )
        await node.flush()
        log.info("every record is acknowledged (last sequence %d)", node.db.sequence)
    return 0
