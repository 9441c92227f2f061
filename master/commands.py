"""The master's commands: import a chain, or run a development chain."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from chain.importer import ImportProgress, import_chain
from aiohttp import web

from master.dev import DevMaster
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


async def run_dev_master(settings: Settings, chain_id: int, block_time: float, rpc_host: str, rpc_port: int) -> int:
    """A dev chain that mines on demand and every ``block_time`` seconds, serving JSON-RPC on ``rpc_port``.

    The master serves the same read API as a replica (from its own database),
    and ``eth_sendRawTransaction`` goes straight to its miner.
    """
    from rpc.service import RpcService

    async with MasterNode(settings) as node:
        dev = DevMaster(node, chain_id, block_time)
        service = RpcService(node.leveldb, tx_sink=dev)
        app = web.Application(client_max_size=service.limits.max_body_bytes + 1)
        app.router.add_route("*", "/", service.handle_http)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, rpc_host, rpc_port).start()
        log.info("dev master: chain %d at block %d, JSON-RPC on http://%s:%d", chain_id, dev.head_number(), rpc_host, rpc_port)
        try:
            await dev.run()
        finally:
            await runner.cleanup()
    return 0
