"""The master process, composed: its node (capture, journal, publisher, heartbeats), its JSON-RPC, the dev miner.

``ethercattle import`` and ``ethercattle master`` run these. It sits with the
command line above what it composes: ``master`` (the capture side) never
imports the RPC.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from chain.importer import ImportProgress, import_chain
from cluster.settings import Settings
from master.dev import DevMaster
from master.node import MasterNode
from rpc.http import make_app
from rpc.limits import RpcLimits
from rpc.service import RpcService

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


async def serve_rpc(service: RpcService, host: str, port: int) -> web.AppRunner:
    """Serve ``service`` over HTTP at ``http://host:port/``."""
    runner = web.AppRunner(make_app(service), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run_master(settings: Settings, rpc_host: str, rpc_port: int, dev_chain_id: int | None, block_time: float) -> int:
    """Run a master until stopped: publisher, heartbeats, and JSON-RPC over its own database.

    With ``dev_chain_id`` it is a dev chain that mines on ``eth_sendRawTransaction``
    and every ``block_time`` seconds; without, it serves the chain that
    ``ethercattle import`` built (and keeps heartbeats flowing, so replicas can
    tell an idle master from a gone one).
    """
    async with MasterNode(settings) as node:
        dev = None if dev_chain_id is None else DevMaster(node, dev_chain_id, block_time)
        # The master writes every block itself: nothing is ever a block ahead of it to wait for.
        service = RpcService(node.leveldb, tx_sink=dev, limits=RpcLimits(block_wait_blocks=0))
        runner = await serve_rpc(service, rpc_host, rpc_port)
        log.info("master %s of cluster %s: JSON-RPC on http://%s:%d%s", settings.master_id, settings.cluster, rpc_host, rpc_port,
                 "" if dev is None else f" (dev chain {dev_chain_id}, head {dev.head_number()})")
        try:
            await (dev.run() if dev is not None else asyncio.Event().wait())
        finally:
            await runner.cleanup()
    return 0
