"""Follow benchmark: a master following a busy anvil, beside py-evm's own execution rate, and head-to-visible latency.

    .venv/bin/python bench/follow.py [--blocks 200] [--transactions 25] [--latency-blocks 60]

Runs anvil (npm ``@foundry-rs/anvil``, installed by ``deploy/anvil.py``) as the
upstream, a real local broker, ``ethercattle master --follow`` and one replica
worker, all on this machine. Prints:

- catch-up: blocks/s and Mgas/s the master follows a backlog of busy blocks
  (transfers and event-emitting contract calls), fetched over JSON-RPC, executed,
  verified and committed through capture; beside py-evm executing and verifying the
  same blocks in memory, prefetched (no network, no LevelDB, no capture), in the same run;
- latency: from the moment anvil's ``eth_blockNumber`` shows a new block to the
  moment the replica's does, p50/p99, with anvil mining one block per second and the
  master subscribed to ``newHeads`` over WebSocket (``--poll`` follows over HTTP polling).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth.db.atomic import AtomicDB  # noqa: E402

from chain.genesis import load_genesis  # noqa: E402
from deploy.localbroker import LocalBroker, free_port  # noqa: E402
from master.follow import Follower  # noqa: E402
from master.upstream import Upstream  # noqa: E402
from tests.integration.harness import Cluster, get_json, post_json, wait_for  # noqa: E402
from tests.integration.upstream import Anvil  # noqa: E402

BEEF = "0x000000000000000000000000000000000000bEEF"


def log(message: str) -> None:
    print(message, flush=True)


def rpc(url: str, method: str, *params: Any) -> Any:
    return post_json(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).get("result")


def busy_backlog(anvil: Anvil, blocks: int, transactions: int) -> int:
    """Mine ``blocks`` blocks of ``transactions`` each (one in five an event-emitting contract call); returns their gas."""
    store = anvil.deploy_store(9)
    anvil.rpc("evm_mine")
    for number in range(blocks):
        for index in range(transactions):
            sender = index % 9
            if index % 5 == 4:
                anvil.store(sender, store, number * transactions + index)
            else:
                anvil.transfer(sender, BEEF, 1)
        anvil.rpc("evm_mine")
    head = int(anvil.head()["number"], 16)
    return sum(int(anvil.rpc("eth_getBlockByNumber", hex(n), False)["gasUsed"], 16) for n in range(1, head + 1))


def follow_rate(cluster: Cluster, anvil: Anvil, upstream_url: str, head: int) -> tuple[float, str]:
    """Seconds the master took from its first followed block to anvil's head, and its RPC URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    args = [sys.executable, "-m", "pipeline", "master", "--follow", upstream_url, "--genesis", str(anvil.genesis), "--rpc-port", str(port)]
    cluster.spawn(args, cluster.env(cluster.master_dir), "master")
    wait_for(lambda: get_json(url)[0] != 0, 60, "the master's RPC")
    first = wait_for(lambda: (int(rpc(url, "eth_blockNumber") or "0x0", 16) >= 1) and time.perf_counter(), 120, "the first followed block", 0.005)
    wait_for(lambda: int(rpc(url, "eth_blockNumber") or "0x0", 16) >= head, 600, "the master to reach anvil's head", 0.005)
    return time.perf_counter() - first, url


async def execution_rate(anvil: Anvil, head: int) -> float:
    """Seconds py-evm takes to execute and verify blocks 2..head in memory, prefetched (block 1 primes the chain)."""
    async with Upstream(anvil.url) as upstream:
        follower = Follower(AtomicDB(), upstream, load_genesis(anvil.genesis))
        await follower.initialise()
        raws = [raw for n in range(1, head + 1) if (raw := await upstream.rebuilt_block(n)) is not None]
    follower.extend(raws[:1])
    started = time.perf_counter()
    follower.extend(raws[1:])
    seconds = time.perf_counter() - started
    assert follower.head().block_number == head
    return seconds


def visible_latency(anvil: Anvil, replica: str, blocks: int) -> list[float]:
    """Milliseconds from anvil showing each new block to the replica showing it, one block per second."""
    anvil.rpc("evm_setIntervalMining", 1)
    upstream_seen: dict[int, float] = {}
    replica_seen: dict[int, float] = {}
    start = int(anvil.head()["number"], 16)
    deadline = time.monotonic() + blocks * 1.5 + 30
    while len([n for n in replica_seen if n in upstream_seen]) < blocks and time.monotonic() < deadline:
        now = time.perf_counter()
        upstream_head = int(rpc(anvil.url, "eth_blockNumber"), 16)
        if upstream_head > start and upstream_head not in upstream_seen:
            upstream_seen[upstream_head] = now
            anvil.transfer(0, BEEF, 1)  # a transaction for the next block
        replica_head = int(rpc(replica, "eth_blockNumber") or "0x0", 16)
        if replica_head > start and replica_head not in replica_seen:
            replica_seen[replica_head] = time.perf_counter()
        time.sleep(0.002)
    anvil.rpc("evm_setIntervalMining", 0)
    return [(replica_seen[n] - upstream_seen[n]) * 1000 for n in sorted(replica_seen) if n in upstream_seen]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--transactions", type=int, default=25, help="transactions per block")
    parser.add_argument("--latency-blocks", type=int, default=60)
    parser.add_argument("--poll", action="store_true", help="follow over HTTP polling instead of a WebSocket newHeads subscription")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ethercattle-bench-follow-"))
    anvil = Anvil.start(root, "--no-mining")
    try:
        log(f"anvil {anvil.rpc('web3_clientVersion')} on {anvil.url}; mining {args.blocks} blocks of {args.transactions} transactions")
        gas = busy_backlog(anvil, args.blocks, args.transactions)
        head = int(anvil.head()["number"], 16)
        upstream_url = anvil.url if args.poll else anvil.url.replace("http://", "ws://")
        with LocalBroker(log_path=root / "broker.log") as broker:
            cluster = Cluster(broker.url, root, name="benchfollow")
            try:
                follow_seconds, _ = follow_rate(cluster, anvil, upstream_url, head)
                exec_seconds = asyncio.run(execution_rate(anvil, head))
                log(f"{'catch-up, ' + str(head) + ' blocks, ' + format(gas / 1e6, '.1f') + ' Mgas':<52}{'blocks/s':>10}{'Mgas/s':>9}")
                log(f"{'master following anvil (RPC, execute, verify, capture)':<52}{(head - 1) / follow_seconds:>10.1f}"
                    f"{gas / 1e6 / follow_seconds:>9.2f}")
                log(f"{'py-evm execute + verify alone (memory, prefetched)':<52}{(head - 1) / exec_seconds:>10.1f}"
                    f"{gas / 1e6 / exec_seconds:>9.2f}")
                log(f"ratio following/py-evm: {exec_seconds / follow_seconds:.2f}")

                replica = cluster.start_replica("r1")
                replica.wait_ready(120)
                wait_for(lambda: int(rpc(replica.url + "/", "eth_blockNumber") or "0x0", 16) >= head, 120, "the replica to catch up")
                latencies = visible_latency(anvil, replica.url + "/", args.latency_blocks)
                how = "HTTP polling every 0.25 s" if args.poll else "newHeads over WebSocket"
                log(f"upstream-head-to-replica-visible latency over {len(latencies)} blocks at 1 block/s ({how}): "
                    f"p50 {statistics.median(latencies):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms")
            finally:
                cluster.stop_all()
    finally:
        anvil.stop()


if __name__ == "__main__":
    main()
