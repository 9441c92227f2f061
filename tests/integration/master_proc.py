"""A master process for the end-to-end suites: heartbeats, and an empty dev block every BLOCK_TIME.

    python -m tests.integration.master_proc --block-time 0.5

Reads the usual ``ETHERCATTLE_*`` settings; creates the dev chain in an empty
datadir (or continues the chain there), mines through the capture wrapper like
any master (first a backlog of ``--backlog`` blocks, each followed by
``--padding`` filler records, all acknowledged by the broker), prints
``master ready`` once running, and on SIGTERM stops mining,
waits (a little) for the broker's acknowledgements and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from chain.dev import DevMiner, init_dev_chain
from master.node import MasterNode
from cluster.settings import load_settings

log = logging.getLogger("ethercattle.testmaster")


async def run(block_time: float, backlog: int, padding: int) -> None:
    async with MasterNode(load_settings()) as node:
        assert node.db is not None
        init_dev_chain(node.db)
        miner = DevMiner(node.db)
        for number in range(backlog):  # a backlog for new replicas: blocks, each followed by padding records
            miner.mine()
            for index in range(padding):
                node.db[b"padding-%08d-%04d" % (number, index)] = os.urandom(512)
        if backlog:
            await node.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        print(f"master ready at block {miner.chain.get_canonical_head().block_number} sequence {node.db.sequence}", flush=True)
        while not stop.is_set():
            if block_time > 0:
                block = miner.mine().block
                log.info("mined block %d", block.number)
            try:
                await asyncio.wait_for(stop.wait(), timeout=block_time if block_time > 0 else None)
            except asyncio.TimeoutError:
                pass
        try:
            await asyncio.wait_for(node.flush(), timeout=5)
        except asyncio.TimeoutError:
            log.warning("broker did not acknowledge everything within 5s; the journal keeps the rest")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--block-time", type=float, default=0.0, help="seconds between empty blocks (0: heartbeats only)")
    parser.add_argument("--backlog", type=int, default=0, help="blocks to mine at once before `master ready`")
    parser.add_argument("--padding", type=int, default=0, help="512-byte puts after each backlog block (a longer log)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args.block_time, args.backlog, args.padding))


if __name__ == "__main__":
    main()
