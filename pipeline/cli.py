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

from pipeline.settings import SettingsError, load_settings

log = logging.getLogger("ethercattle")


def _import(args: argparse.Namespace) -> int:
    from master.commands import run_import

    return asyncio.run(run_import(load_settings(), Path(args.genesis), Path(args.chain)))


def _master(args: argparse.Namespace) -> int:
    from master.commands import run_dev_master

    if not args.dev:
        print("ethercattle master: only --dev is available; feed a real chain with `ethercattle import`", file=sys.stderr)
        return 2
    return asyncio.run(run_dev_master(load_settings(), args.chain_id, args.block_time, args.rpc_host, args.rpc_port))


def _topics(args: argparse.Namespace) -> int:
    from pipeline.admin import ensure_topics

    created = asyncio.run(ensure_topics(load_settings()))
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0


def _up(args: argparse.Namespace) -> int:
    from deploy.local import run_local

    return run_local(Path(args.datadir), args.broker_port, args.rpc_port, args.replicas, args.block_time)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ethercattle", description="Ethereum JSON-RPC replicas fed by change data capture over Kafka.")
    commands = root.add_subparsers(dest="command", required=True)

    imp = commands.add_parser("import", help="import a go-ethereum genesis.json + chain.rlp through the master's capture")
    imp.add_argument("--genesis", required=True)
    imp.add_argument("--chain", required=True)
    imp.set_defaults(run=_import)

    master = commands.add_parser("master", help="run a master")
    master.add_argument("--dev", action="store_true", help="a development chain with funded accounts (chain.dev)")
    master.add_argument("--chain-id", type=int, default=1337)
    master.add_argument("--block-time", type=float, default=5.0, help="seconds between empty blocks (0: only when transactions arrive)")
    master.add_argument("--rpc-host", default="127.0.0.1")
    master.add_argument("--rpc-port", type=int, default=8545)
    master.set_defaults(run=_master)

    topics = commands.add_parser("topics", help="create the cluster's topics with the right partition counts")
    topics.set_defaults(run=_topics)

    up = commands.add_parser("up", help="everything locally: broker, dev master, replicas, emitter")
    up.add_argument("--datadir", default="var/local")
    up.add_argument("--broker-port", type=int, default=9092)
    up.add_argument("--rpc-port", type=int, default=8546, help="first replica's RPC port (the next ones follow)")
    up.add_argument("--replicas", type=int, default=1)
    up.add_argument("--block-time", type=float, default=2.0)
    up.set_defaults(run=_up)
    return root


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        sys.exit(run(args))
    except SettingsError as exc:
        print(f"ethercattle: {exc}", file=sys.stderr)
        sys.exit(2)
