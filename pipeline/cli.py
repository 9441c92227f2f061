"""The ``ethercattle`` command line: it wires master, replicas and tools together.

It sits above everything it composes (master, chain, replica storage); nothing
imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Callable

from aiokafka.errors import KafkaConnectionError

from broker.logs import quiet_kafka_client_repeats
from broker.reach import unreachable
from cluster.settings import SettingsError, load_settings

log = logging.getLogger("ethercattle")

DEV_FORKS = ("paris", "shanghai", "cancun", "prague", "osaka")
"""``chain.dev.DEV_FORKS``, spelled out so that parsing arguments does not load py-evm."""


def _import(args: argparse.Namespace) -> int:
    from pipeline.master import run_import

    return asyncio.run(run_import(load_settings(), Path(args.genesis), Path(args.chain)))


def _master(args: argparse.Namespace) -> int:
    if args.follow and not args.genesis:
        raise SystemExit("ethercattle master --follow needs --genesis FILE")
    from pipeline.master import run_follow, run_master

    if args.follow:
        return asyncio.run(run_follow(load_settings(), args.follow, Path(args.genesis), args.rpc_host, args.rpc_port, args.max_reorg_depth))
    chain_id = args.chain_id if args.dev else None
    return asyncio.run(run_master(load_settings(), args.rpc_host, args.rpc_port, chain_id, args.block_time, args.fork))


def _topics(args: argparse.Namespace) -> int:
    """Create the cluster's missing topics; exit 1 when one found has another partition count (each is logged)."""
    from broker.admin import cluster_topics, ensure_topics, partitions_held

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # an unreachable broker is said once, by main()
    settings = load_settings()
    created = asyncio.run(ensure_topics(settings))
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    specs = cluster_topics(settings)
    held = asyncio.run(partitions_held(settings, [spec.name for spec in specs]))
    misshapen = [spec.name for spec in specs if held[spec.name] not in (None, spec.partitions)]
    if misshapen:
        print(f"not as designed: {', '.join(misshapen)} (see the lines above for what to do)")
    return 1 if misshapen else 0


def _up(args: argparse.Namespace) -> int:
    from deploy.local import MAX_CLUSTERS, run_local

    if bool(args.follow) != bool(args.genesis):
        raise SystemExit("ethercattle up: --follow URL and --genesis FILE go together")
    if not 1 <= args.clusters <= MAX_CLUSTERS:
        raise SystemExit(f"ethercattle up: --clusters is 1 to {MAX_CLUSTERS}")
    from master.upstream import http_url

    follow = (args.follow, Path(args.genesis), http_url(args.follow)) if args.follow else None
    return run_local(Path(args.datadir), args.broker_port, args.rpc_port, args.replicas, args.block_time, args.master_port,
                     args.fork, follow, args.lb_port, args.clusters)


def _snapshot(args: argparse.Namespace) -> int:
    from snapshot import commands

    if args.action == "list":
        return commands.list_store(args.dir, args.cluster)
    if args.action == "create":
        return commands.create(load_settings(), args.out, args.format, args.url)
    return commands.restore(load_settings(), args.source, args.skip_log_check, args.keep_existing)


def _cluster(args: argparse.Namespace) -> int:
    from snapshot import cluster

    if args.action == "wait":
        return cluster.wait_ready(args.url, args.timeout)
    plan = cluster.InitPlan(Path(args.snapshot_dir), args.format, args.genesis and Path(args.genesis), args.chain and Path(args.chain),
                            args.dev, args.chain_id, tuple(Path(d) for d in args.replica_datadir))
    return cluster.init_cluster(load_settings(), plan)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ethercattle", description="Ethereum JSON-RPC replicas fed by change data capture over Kafka.")
    commands = root.add_subparsers(dest="command", required=True)

    imp = commands.add_parser("import", help="import a go-ethereum genesis.json + chain.rlp through the master's capture")
    imp.add_argument("--genesis", required=True)
    imp.add_argument("--chain", required=True)
    imp.set_defaults(run=_import)

    master = commands.add_parser("master", help="run a master: heartbeats and JSON-RPC over its database (the chain `import` built, or --dev)")
    master.add_argument("--dev", action="store_true", help="a development chain with funded accounts that mines on eth_sendRawTransaction")
    master.add_argument("--chain-id", type=int, default=1337)
    master.add_argument("--fork", choices=DEV_FORKS, default="osaka", help="the dev chain's rules from genesis (default: the newest)")
    master.add_argument("--block-time", type=float, default=5.0, help="seconds between empty blocks (0: only when transactions arrive)")
    master.add_argument("--follow", metavar="URL", help="follow a trusted node's chain over JSON-RPC (http:// polls, ws:// subscribes to newHeads); needs --genesis")
    master.add_argument("--genesis", help="the followed chain's go-ethereum genesis.json")
    master.add_argument("--max-reorg-depth", type=int, default=64, help="deepest reorg --follow rolls back; deeper stops following")
    master.add_argument("--rpc-host", default="127.0.0.1")
    master.add_argument("--rpc-port", type=int, default=8545)
    master.set_defaults(run=_master)

    topics = commands.add_parser("topics", help="create the cluster's topics with the right partition counts")
    topics.set_defaults(run=_topics)

    up = commands.add_parser("up", help="everything locally: broker, dev master, replicas, emitter")
    up.add_argument("--datadir", default="var/local")
    up.add_argument("--broker-port", type=int, default=9092)
    up.add_argument("--rpc-port", type=int, default=8546, help="first replica's RPC port (the next ones follow)")
    up.add_argument("--master-port", type=int, help="the master's RPC port (default: the first replica's port - 1)")
    up.add_argument("--replicas", type=int, default=1, help="replicas per cluster")
    up.add_argument("--clusters", type=int, default=1,
                    help="clusters behind the one HAProxy, each its own broker, master and replicas (1 to 9; default 1)")
    up.add_argument("--lb-port", type=int, help="the cluster's one URL: HAProxy over the replicas (default: after the last replica's port)")
    up.add_argument("--block-time", type=float, default=2.0)
    up.add_argument("--fork", choices=DEV_FORKS, default="osaka", help="the dev master's rules (default: the newest)")
    up.add_argument("--follow", metavar="URL", help="the master follows this trusted node instead of mining a dev chain (with --genesis)")
    up.add_argument("--genesis", help="genesis.json of the chain --follow follows")
    up.set_defaults(run=_up)

    snapshot = commands.add_parser("snapshot", help="snapshots of a node's database: create, restore, list")
    snapshot.set_defaults(run=_snapshot)
    snap = snapshot.add_subparsers(dest="action", required=True)
    create = snap.add_parser("create", help="a consistent snapshot of DATADIR/chaindb (stopped node), or of a running replica (--url)")
    create.add_argument("--out", required=True, help="snapshot path (with --url: on the replica's filesystem; relative: under its SNAPSHOT_DIR)")
    create.add_argument("--format", choices=["dir", "tar.gz"], default="tar.gz")
    create.add_argument("--url", help="web address of a running replica, e.g. http://127.0.0.1:6066: it writes the snapshot while it runs")
    restore = snap.add_parser("restore", help="verify a snapshot and lay it down at DATADIR/chaindb (an empty datadir)")
    restore.add_argument("--from", dest="source", required=True, help="a snapshot, or a directory of snapshots (the newest of the cluster is taken)")
    restore.add_argument("--skip-log-check", action="store_true", help="do not ask Kafka whether the log still continues the snapshot")
    restore.add_argument("--keep-existing", action="store_true", help="succeed without restoring when DATADIR/chaindb exists (init containers)")
    listing = snap.add_parser("list", help="the snapshots in a directory, newest first")
    listing.add_argument("--dir", required=True)
    listing.add_argument("--cluster")

    cluster = commands.add_parser("cluster", help="initialize a cluster; wait for a replica to be ready")
    cluster.set_defaults(run=_cluster)
    clu = cluster.add_subparsers(dest="action", required=True)
    init = clu.add_parser("init", help="topics, master database (import or dev genesis), master snapshot, replica datadirs restored from it")
    init.add_argument("--snapshot-dir", required=True)
    init.add_argument("--format", choices=["dir", "tar.gz"], default="tar.gz")
    init.add_argument("--genesis", help="go-ethereum genesis.json to import (with --chain)")
    init.add_argument("--chain", help="chain.rlp to import (with --genesis)")
    init.add_argument("--dev", action="store_true", help="the dev chain's genesis instead of an import")
    init.add_argument("--chain-id", type=int, default=1337)
    init.add_argument("--replica-datadir", action="append", default=[], help="restore the master's snapshot here (repeatable)")
    wait = clu.add_parser("wait", help="follow a replica's catch-up until /readyz answers 200")
    wait.add_argument("--url", required=True)
    wait.add_argument("--timeout", type=float, default=600.0)
    return root


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_kafka_client_repeats()
    args = parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        sys.exit(run(args))
    except SettingsError as exc:
        print(f"ethercattle: {exc}", file=sys.stderr)
        sys.exit(2)
    except KafkaConnectionError as exc:
        print(f"ethercattle: {unreachable(load_settings().broker, exc)}", file=sys.stderr)
        sys.exit(1)
