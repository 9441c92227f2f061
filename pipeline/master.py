"""The master process, composed: its node (capture, journal, publisher, heartbeats), its JSON-RPC, the dev miner or the follower.

``ethercattle import`` and ``ethercattle master`` run these. It sits with the
command line above what it composes: ``master`` (the capture side) never
imports the RPC.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from chain.genesis import load_genesis
from chain.importer import ImportProgress, import_chain
from cluster.settings import Settings
from master.dev import DevMaster
from master.follow import DEFAULT_MAX_REORG_DEPTH, FollowMetrics, Follower, FollowStopped
from master.node import MasterNode
from master.upstream import Upstream
from rpc.cors import BrowserAccess
from rpc.frontdoor import FrontDoorRunner
from rpc.http import make_app
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


async def serve_rpc(service: RpcService, host: str, port: int, routes: Sequence[web.RouteDef] = ()) -> web.AppRunner:
    """Serve ``service`` over HTTP at ``http://host:port/`` (and any extra ``routes``)."""
    app = make_app(service)
    app.add_routes(routes)
    runner = FrontDoorRunner(app, service, BrowserAccess(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run_master(settings: Settings, rpc_host: str, rpc_port: int, dev_chain_id: int | None, block_time: float,
                     dev_fork: str = "osaka") -> int:
    """Run a master until stopped: publisher, heartbeats, and JSON-RPC over its own database.

    With ``dev_chain_id`` it is a dev chain that mines on ``eth_sendRawTransaction``
    and every ``block_time`` seconds, under ``dev_fork``'s rules; without, it serves the chain that
    ``ethercattle import`` built (and keeps heartbeats flowing, so replicas can
    tell an idle master from a gone one).
    """
    async with MasterNode(settings) as node:
        assert node.db is not None
        dev = None if dev_chain_id is None else DevMaster(node.db, dev_chain_id, block_time, dev_fork)
        service = RpcService(node.leveldb, tx_sink=dev)
        runner = await serve_rpc(service, rpc_host, rpc_port)
        log.info("master %s of cluster %s: JSON-RPC on http://%s:%d%s", settings.master_id, settings.cluster, rpc_host, rpc_port,
                 "" if dev is None else f" (dev chain {dev_chain_id}, head {dev.head_number()})")
        try:
            await (dev.run() if dev is not None else asyncio.Event().wait())
        finally:
            await runner.cleanup()
    return 0


async def run_follow(settings: Settings, upstream_url: str, genesis_path: Path, rpc_host: str, rpc_port: int,
                     max_reorg_depth: int = DEFAULT_MAX_REORG_DEPTH) -> int:
    """``ethercattle master --follow URL --genesis FILE``: follow, publish, and serve JSON-RPC and /metrics.

    When following stops (another chain, a block that does not reproduce, a reorg too
    deep) the reason is logged as CRITICAL and the master goes on serving what it
    has, heartbeats included; replicas' ``MAX_BLOCK_AGE`` readiness tells when the head gets old.
    """
    genesis = load_genesis(genesis_path)
    metrics = FollowMetrics()

    async def serve_metrics(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async with MasterNode(settings) as node, Upstream(upstream_url) as upstream:
        assert node.db is not None
        runner = await serve_rpc(RpcService(node.leveldb), rpc_host, rpc_port, [web.get("/metrics", serve_metrics)])
        log.info("master %s of cluster %s follows %s; JSON-RPC and /metrics on http://%s:%d/",
                 settings.master_id, settings.cluster, upstream_url, rpc_host, rpc_port)
        try:
            await Follower(node.db, upstream, genesis, max_reorg_depth, metrics).run()
        except FollowStopped as exc:
            log.critical("following stopped: %s", exc)
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
    return 0
