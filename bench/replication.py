"""Replication benchmark: replica catch-up rate beside raw plyvel, and commit-to-visible latency.

    .venv/bin/python bench/replication.py [--records 20000] [--latency-seconds 10]

Runs a real local broker, a master in this process (dev chain mining blocks of
ten transfers: py-evm's own write mix), and a replica worker process. Prints:

- catch-up: records/s and MB/s the replica applied on a backlog, beside plyvel
  alone writing the same records (one write batch per record) in the same run;
- latency: master commit to replica visibility (its /healthz sequence), p50/p99,
  while the master commits blocks at a steady rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
import plyvel  # noqa: E402
from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402
from eth_account import Account  # noqa: E402

from chain.dev import DevMiner, dev_accounts, init_dev_chain  # noqa: E402
from deploy.localbroker import LocalBroker, free_port, wait_for_port  # noqa: E402
from master.node import MasterNode  # noqa: E402
from cluster.record import Authenticator, Kind, decode, decode_record  # noqa: E402
from cluster.settings import Settings  # noqa: E402
from cluster.topics import TopicNames  # noqa: E402

SECRET = "benchmark-secret-0123456789"


class TransferMix:
    """Blocks of ten EIP-1559 transfers from the dev accounts to fresh addresses."""

    def __init__(self) -> None:
        self.accounts = dev_accounts()
        self.nonces = [0] * len(self.accounts)
        self.rng = random.Random(7)

    def block(self, size: int = 10) -> list[bytes]:
        raws = []
        for _ in range(size):
            sender = self.rng.randrange(len(self.accounts))
            tx = Account.sign_transaction(
                {"to": self.rng.randbytes(20), "value": 1, "gas": 21000, "maxFeePerGas": 10**10,
                 "maxPriorityFeePerGas": 10**9, "nonce": self.nonces[sender], "chainId": 1337, "type": 2},
                self.accounts[sender][1],
            )
            self.nonces[sender] += 1
            raws.append(bytes(tx.raw_transaction))
        return raws


async def health(session: aiohttp.ClientSession, url: str) -> dict | None:
    try:
        async with session.get(url + "/healthz") as response:
            return json.loads(await response.read())
    except aiohttp.ClientError:
        return None


async def build_backlog(settings: Settings, records: int, fork: str) -> tuple[int, float]:
    async with MasterNode(settings) as node:
        assert node.db is not None
        init_dev_chain(node.db, 1337, fork)
        miner, mix = DevMiner(node.db), TransferMix()
        started = time.perf_counter()
        while node.db.sequence < records:
            miner.mine(mix.block())
        await node.flush()
        return node.db.sequence, time.perf_counter() - started


async def catch_up(url: str, target: int) -> tuple[float, int, int]:
    """Seconds from the first applied record to the target, records and bytes applied in that span."""
    async with aiohttp.ClientSession() as session:
        first: dict | None = None
        first_at = 0.0
        while True:
            body = await health(session, url)
            now = time.perf_counter()
            if body and body["sequence"] > 0 and first is None:
                first, first_at = body, now
            if body and body["sequence"] >= target:
                assert first is not None
                return now - first_at, body["records_applied"] - first["records_applied"], body["bytes_applied"] - first["bytes_applied"]
            await asyncio.sleep(0.005)


async def read_records(settings: Settings) -> list[list[tuple[bytes, bytes | None]]]:
    auth = Authenticator.for_cluster(settings.secret, settings.cluster)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    partition = TopicPartition(TopicNames(settings.cluster).cdc, 0)
    consumer.assign([partition])
    records: dict[int, list[tuple[bytes, bytes | None]]] = {}
    parts: list[bytes] = []
    try:
        while True:
            batch = await consumer.getmany(partition, timeout_ms=1000)
            if not batch:
                break
            for message in batch[partition]:
                envelope = decode(auth, message.value)
                if envelope.kind is Kind.RECORDS:
                    records.update((r.sequence, list(r.operations)) for r in envelope.records)
                elif envelope.kind is Kind.PART and envelope.part is not None:
                    parts.append(envelope.part.chunk)
                    if envelope.part.index + 1 == envelope.part.count:
                        record = decode_record(b"".join(parts))
                        records[record.sequence], parts = list(record.operations), []
    finally:
        await consumer.stop()
    return [records[s] for s in sorted(records)]


def plyvel_rate(records: list[list[tuple[bytes, bytes | None]]], path: Path) -> tuple[float, int]:
    db = plyvel.DB(str(path), create_if_missing=True)
    size = sum(len(k) + len(v or b"") for ops in records for k, v in ops)
    started = time.perf_counter()
    for ops in records:
        with db.write_batch(transaction=True) as batch:
            for key, value in ops:
                batch.delete(key) if value is None else batch.put(key, value)
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed, size


async def latency(settings: Settings, url: str, seconds: float, blocks_per_second: float) -> list[float]:
    async with MasterNode(settings) as node:
        assert node.db is not None
        miner, mix = DevMiner(node.db), TransferMix()
        mix.nonces = [miner.chain.get_vm().state.get_nonce(address) for address, _ in mix.accounts]
        committed: list[tuple[int, float]] = []
        seen: list[tuple[float, int]] = []
        stop = asyncio.Event()

        async def poll() -> None:
            async with aiohttp.ClientSession() as session:
                while not stop.is_set():
                    body = await health(session, url)
                    if body:
                        seen.append((time.perf_counter(), body["sequence"]))

        poller = asyncio.create_task(poll())
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            miner.mine(mix.block(2))
            committed.append((node.db.sequence, time.perf_counter()))
            await asyncio.sleep(1 / blocks_per_second)
        await node.flush()
        await asyncio.sleep(1.0)
        stop.set()
        await poller
    latencies = []
    for sequence, at in committed:
        visible = next((t for t, s in seen if s >= sequence and t >= at), None)
        if visible is not None:
            latencies.append((visible - at) * 1000)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--blocks-per-second", type=float, default=20.0)
    parser.add_argument("--fork", default="osaka", help="the dev chain's rules (default osaka; prague to compare)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ethercattle-bench-"))
    with LocalBroker(log_path=root / "broker.log") as broker:
        settings = Settings(broker=broker.url, cluster="bench", secret=SECRET, datadir=root / "master", heartbeat_interval=0.5)
        total, mining = asyncio.run(build_backlog(settings, args.records, args.fork))
        print(f"backlog: {total} records from py-evm mining blocks of 10 transfers ({total / mining:,.0f} records/s committed by the master)")

        port = free_port()
        env = {**__import__("os").environ, "ETHERCATTLE_BROKER": broker.url, "ETHERCATTLE_CLUSTER": "bench",
               "ETHERCATTLE_SECRET": SECRET, "ETHERCATTLE_DATADIR": str(root / "replica"), "ETHERCATTLE_REPLICA_ID": "r1"}
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "faust"), "-L", "uvloop", "-A", "pipeline", "worker", "--web-port", str(port), "--web-host", "127.0.0.1"],
            env=env, stdout=open(root / "replica.log", "wb"), stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, 60)
            url = f"http://127.0.0.1:{port}"
            seconds, applied, applied_bytes = asyncio.run(catch_up(url, total))
            records = asyncio.run(read_records(settings))
            raw_seconds, raw_bytes = plyvel_rate(records, root / "plyvel")
            replica_rate, raw_rate = applied / seconds, len(records) / raw_seconds
            print(f"{'catch-up':<28}{'records/s':>12}{'MB/s':>10}")
            print(f"{'replica (Kafka -> LevelDB)':<28}{replica_rate:>12,.0f}{applied_bytes / seconds / 1e6:>10.1f}")
            print(f"{'plyvel alone, same records':<28}{raw_rate:>12,.0f}{raw_bytes / raw_seconds / 1e6:>10.1f}")
            print(f"ratio replica/plyvel: {replica_rate / raw_rate:.2f}")

            lat = asyncio.run(latency(settings, url, args.latency_seconds, args.blocks_per_second))
            print(
                f"commit-to-visible latency over {len(lat)} blocks at {args.blocks_per_second:g} blocks/s: "
                f"p50 {statistics.median(lat):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms, max {max(lat):.1f} ms"
            )
        finally:
            worker.terminate()
            worker.wait(15)


if __name__ == "__main__":
    main()
