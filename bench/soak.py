"""Soak: a real replica's memory and lag over a long fuzz and load run.

Runs a local broker, a dev master mining a block every 0.2 s and one replica worker,
then for ``--seconds`` sends, from ``--clients`` concurrent clients:

- spec fuzz: requests generated from the execution-apis schemas (``tests/rpc/spec.py``),
  valid and broken params for every method, plus unknown method names, and batches of them;
- load: eth_blockNumber, eth_getBalance of random accounts, eth_call with state overrides;
- per-client structures: eth_newFilter installs never polled, WebSocket clients that
  subscribe and leave.

Every ``--every`` seconds it prints the replica's RSS (``/proc/PID/status``: anonymous and
file-backed apart), its lag (``/readyz``), how many bounded structures are full and what the
response cache holds (``ethercattle_bounded_size`` / ``_limit`` on ``/metrics``), the requests
answered and shed; then the requests answered and shed per second since the last look, the
requests in flight and the calls waiting on the broker (``ethercattle_rpc_in_flight``,
``ethercattle_rpc_broker_waiting``), those refused for it, the mean time of the calls that wait
on the broker (filters, sent transactions) since the last look, and the broker's RSS: a replica
whose broker slows down must keep answering reads. At the end: RSS at the first sample, peak and end, its growth and slope over
the second half (what a bound looks like: the caches fill, then the line goes flat), each
bounded structure against its limit, and what the replica's allocators held (``bench/memtrace``:
glibc's bytes in use and freed-but-kept, Python's blocks; with ``--tracemalloc``, the Python
heap's growth by the line that allocated it).

    .venv/bin/python bench/soak.py --seconds 1500 --response-cache-bytes 1048576
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from deploy.localbroker import LocalBroker, free_port  # noqa: E402
from tests.integration.harness import Cluster, Replica, get_json, metrics  # noqa: E402
from tests.rpc.spec import Spec  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def memory_mb(pid: int) -> dict[str, float]:
    """The process's resident memory from ``/proc/PID/status``: VmRSS, and its anonymous part
    (the heaps: Python's, LevelDB's and RocksDB's caches) apart from its file part (mapped table
    files and libraries, which the kernel may drop)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def rss_mb(pid: int) -> float:
    return memory_mb(pid).get("VmRSS", float("nan"))


def lag(replica: Replica) -> Any:
    _, body = get_json(f"{replica.url}/readyz", timeout=5)
    return next((c["value"] for c in (body or {}).get("checks", []) if c["name"] == "lag"), None)


def fuzz_bodies(per_method: int) -> list[bytes]:
    """``per_method`` request bodies for each method of the spec, valid and broken params
    (drawn by running hypothesis' generate phase: ``example()`` is far slower)."""
    spec = Spec()
    bodies: list[bytes] = []
    for method in sorted(spec.methods):
        params = st.one_of(spec.valid_params(method), spec.invalid_params(method))
        bodies.extend(json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": drawn}).encode()
                      for n, drawn in enumerate(draw(params, per_method)))
    return bodies


def draw(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    drawn: list[Any] = []

    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


def load_body(rng: random.Random) -> bytes:
    """One request of the load mix: new accounts, new code, unknown methods (names caches can't hold all of)."""
    account = "0x" + rng.randbytes(20).hex()
    kind = rng.randrange(5)
    if kind == 0:
        call: dict[str, Any] = {"method": "eth_blockNumber", "params": []}
    elif kind == 1:
        call = {"method": "eth_getBalance", "params": [account, "latest"]}
    elif kind == 2:
        code = "0x" + rng.randbytes(8).hex() + "4360005260206000f3"
        call = {"method": "eth_call", "params": [{"to": account}, "latest", {account: {"code": code}}]}
    elif kind == 3:
        call = {"method": f"eth_nope{rng.randrange(10**9)}", "params": []}
    else:
        call = {"method": "eth_newFilter", "params": [{"address": account}]}
    return json.dumps({"jsonrpc": "2.0", "id": 1, **call}).encode()


async def client(session: aiohttp.ClientSession, url: str, bodies: list[bytes], deadline: float,
                 seed: int, counts: dict[str, int]) -> None:
    rng = random.Random(seed)
    headers = {"Content-Type": "application/json"}
    while time.monotonic() < deadline:
        if rng.random() < 0.5:
            body = rng.choice(bodies)
        elif rng.random() < 0.1:
            body = b"[" + b",".join(rng.choice(bodies) for _ in range(rng.randrange(2, 20))) + b"]"
        else:
            body = load_body(rng)
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                key = "shed" if response.status == 503 else "answered"
        except (aiohttp.ClientError, asyncio.TimeoutError):
            key = "failed"
        counts[key] = counts.get(key, 0) + 1


async def websocket_churn(session: aiohttp.ClientSession, url: str, deadline: float, counts: dict[str, int]) -> None:
    """WebSocket clients that subscribe to new heads and logs, read a little and leave."""
    subscribe = [{"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]},
                 {"jsonrpc": "2.0", "id": 2, "method": "eth_subscribe", "params": ["logs", {}]}]
    while time.monotonic() < deadline:
        try:
            async with session.ws_connect(url) as socket:
                for request in subscribe:
                    await socket.send_json(request)
                for _ in range(3):
                    await socket.receive(timeout=2)
            counts["websockets"] = counts.get("websockets", 0) + 1
        except (aiohttp.ClientError, asyncio.TimeoutError):
            counts["websocket failures"] = counts.get("websocket failures", 0) + 1


BROKER_METHODS = frozenset({"eth_newFilter", "eth_newBlockFilter", "eth_newPendingTransactionFilter", "eth_getFilterChanges",
                            "eth_getFilterLogs", "eth_uninstallFilter", "eth_sendRawTransaction", "eth_sendRawTransactionSync"})
"""The calls whose answer waits on the broker (``waits_on_broker`` in their method tables)."""


@dataclass(frozen=True)
class Traffic:
    """The replica's request figures at one look (``/metrics``) and the client's counts then."""

    counts: dict[str, int]
    """The clients' answered, shed and failed requests so far."""
    in_flight: float = float("nan")
    broker_waiting: float = float("nan")
    broker_refused: float = float("nan")
    broker_calls: float = 0.0
    """Calls that waited on the broker answered so far (not counting those refused for it), and the
    seconds they took together."""
    broker_seconds: float = 0.0
    reads: float = 0.0
    """Other calls answered with a result so far (reads, eth_call ...)."""


@dataclass(frozen=True)
class Sample:
    """One look at the replica: seconds into the soak, its memory (MB), lag, and its bounded structures."""

    at: float
    memory: dict[str, float]
    lag: Any
    bounded: dict[str, tuple[float, float]]
    """``ethercattle_bounded_size`` and ``ethercattle_bounded_limit`` by (structure, unit)."""
    traffic: Traffic
    broker_rss: float

    @property
    def rss(self) -> float:
        return self.memory.get("VmRSS", float("nan"))


def bounded(samples: dict[str, dict[Any, float]]) -> dict[str, tuple[float, float]]:
    """Each bounded structure's size and limit, as the replica's /metrics shows them."""
    sizes, limits = samples.get("ethercattle_bounded_size", {}), samples.get("ethercattle_bounded_limit", {})
    found = {}
    for labels, size in sizes.items():
        named = dict(labels)
        found[f"{named['structure']} ({named['unit']})"] = (size, limits.get(labels, float("nan")))
    return found


def traffic(samples: dict[str, dict[Any, float]], counts: dict[str, int]) -> Traffic:
    """The request figures of one /metrics look."""
    def gauge(name: str) -> float:
        return next(iter(samples.get(name, {}).values()), float("nan"))

    def total(name: str, broker: bool) -> float:
        return sum(value for labels, value in samples.get(name, {}).items()
                   if (dict(labels).get("method") in BROKER_METHODS) == broker and dict(labels).get("status") != "-32005")

    reads = sum(value for labels, value in samples.get("ethercattle_rpc_requests_total", {}).items()
                if dict(labels).get("method") not in BROKER_METHODS and dict(labels).get("status") == "ok")
    return Traffic(dict(counts), gauge("ethercattle_rpc_in_flight"), gauge("ethercattle_rpc_broker_waiting"),
                   gauge("ethercattle_rpc_broker_waits_refused_total"), total("ethercattle_rpc_request_seconds_count", True),
                   total("ethercattle_rpc_request_seconds_sum", True), reads)


def look(replica: Replica, broker_pid: int, started: float, counts: dict[str, int]) -> Sample:
    """A sample; lag and bounds unknown when the replica does not answer in time (a heap snapshot pauses it)."""
    memory, broker_rss = memory_mb(replica.process.pid), rss_mb(broker_pid)
    try:
        samples = metrics(replica)
        return Sample(time.monotonic() - started, memory, lag(replica), bounded(samples), traffic(samples, counts), broker_rss)
    except OSError as error:
        log(f"replica did not answer its pages: {error}")
        return Sample(time.monotonic() - started, memory, None, {}, Traffic(dict(counts)), broker_rss)


def rates(before: Sample | None, now: Sample) -> str:
    """Answered and shed per second since the previous look, what was in flight and waiting on the broker,
    and the mean time of the calls that waited on the broker."""
    seconds = now.at - (before.at if before else 0.0)
    old, new = (before.traffic if before else Traffic({})), now.traffic
    answered, shed = (new.counts.get(key, 0) - old.counts.get(key, 0) for key in ("answered", "shed"))
    calls = new.broker_calls - old.broker_calls
    mean = f"{(new.broker_seconds - old.broker_seconds) / calls * 1000:.0f} ms" if calls else "-"
    refused = new.broker_refused - (old.broker_refused if before else 0.0)
    return (f"  answered {answered / seconds:5.0f}/s (reads with a result {(new.reads - old.reads) / seconds:4.0f}/s), "
            f"shed {shed / seconds:4.0f}/s; in flight {new.in_flight:.0f}, waiting on the broker {new.broker_waiting:.0f}; "
            f"calls that waited on it {calls / seconds:3.0f}/s, mean {mean}, refused for it {refused / seconds:3.0f}/s; "
            f"broker RSS {now.broker_rss:.0f} MB")


async def soak(replica: Replica, broker_pid: int, bodies: list[bytes], seconds: float, clients: int,
               every: float) -> list[Sample]:
    counts: dict[str, int] = {}
    samples: list[Sample] = []
    started = time.monotonic()
    deadline = started + seconds
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients + 8), timeout=timeout) as session:
        workers = [asyncio.ensure_future(client(session, replica.url + "/", bodies, deadline, n, counts)) for n in range(clients)]
        workers += [asyncio.ensure_future(websocket_churn(session, replica.url.replace("http", "ws") + "/", deadline, counts))
                    for _ in range(4)]
        while time.monotonic() < deadline:
            await asyncio.sleep(min(every, max(deadline - time.monotonic(), 0)))
            sample = await asyncio.to_thread(look, replica, broker_pid, started, counts)
            samples.append(sample)
            memory = sample.memory
            full = sum(size >= limit for size, limit in sample.bounded.values())
            responses = sample.bounded.get("response cache (bytes)", (0.0, 0.0))[0]
            log(f"t={sample.at:6.0f}s  RSS {sample.rss:7.1f} MB (anon {memory.get('RssAnon', 0):.1f}, "
                f"file {memory.get('RssFile', 0):.1f})  lag {sample.lag}  bounds full {full}/{len(sample.bounded)}, "
                f"response cache {responses / 2**20:.1f} MB  {dict(sorted(counts.items()))}")
            log(rates(samples[-2] if len(samples) > 1 else None, sample))
        await asyncio.gather(*workers)
    return samples


def report(samples: list[Sample]) -> None:
    """RSS at start, peak and end, the second half's growth and slope, and each bound's fill at the end."""
    first, last, half = samples[0], samples[-1], samples[len(samples) // 2]
    peak = max(sample.rss for sample in samples)
    minutes = max(last.at - half.at, 1.0) / 60
    lags = [sample.lag for sample in samples if isinstance(sample.lag, int)]
    log(f"RSS first sample {first.rss:.1f} MB, peak {peak:.1f} MB, end {last.rss:.1f} MB; second half "
        f"(t={half.at:.0f}..{last.at:.0f}s) grew {last.rss - half.rss:+.1f} MB = {(last.rss - half.rss) / minutes:+.2f} MB/min "
        f"(anon {last.memory.get('RssAnon', 0) - half.memory.get('RssAnon', 0):+.1f}, "
        f"file {last.memory.get('RssFile', 0) - half.memory.get('RssFile', 0):+.1f}); lag max {max(lags) if lags else 'unknown'}")
    throughput(samples)
    shown = [sample for sample in samples if sample.bounded] or [last]
    for name, (size, limit) in sorted(shown[-1].bounded.items()):
        at_half = shown[len(shown) // 2].bounded.get(name, (float("nan"), limit))[0]
        log(f"  {name:44s} {size:>12,.0f} of {limit:>12,.0f} ({size / limit if limit else 0:6.1%}); at half time {at_half:,.0f}")


def throughput(samples: list[Sample]) -> None:
    """Answered and shed requests per second in each minute of the soak, and the slowest look-to-look
    stretch: a replica that keeps answering holds its rate to the end."""
    answered, shed = [], []
    previous: Sample | None = None
    for sample in samples:
        if sample.at - (previous.at if previous else 0.0) >= 60 or sample is samples[-1]:
            start = previous.traffic.counts if previous else {}
            seconds = sample.at - (previous.at if previous else 0.0)
            answered.append((sample.traffic.counts.get("answered", 0) - start.get("answered", 0)) / seconds)
            shed.append((sample.traffic.counts.get("shed", 0) - start.get("shed", 0)) / seconds)
            previous = sample
    stretches = [(after.traffic.counts.get("answered", 0) - before.traffic.counts.get("answered", 0)) / (after.at - before.at)
                 for before, after in zip(samples, samples[1:])]
    log("answered req/s by minute: " + " ".join(f"{rate:.0f}" for rate in answered) + "; shed/s: " + " ".join(f"{rate:.0f}" for rate in shed))
    if stretches:
        slowest = min(range(len(stretches)), key=stretches.__getitem__)
        log(f"slowest stretch: {stretches[slowest]:.0f} answered/s at t={samples[slowest].at:.0f}..{samples[slowest + 1].at:.0f}s; "
            f"most calls waiting on the broker at a look: {max(sample.traffic.broker_waiting for sample in samples):.0f}")


def heap_report(folder: Path, top: int = 15) -> None:
    """What the replica's allocators held at its first look, half time and the end (``bench/memtrace``);
    with tracemalloc snapshots, the Python heap's growth over the second half by the line that allocated it."""
    looks = [json.loads(line) for line in (folder / "heap.jsonl").read_text().splitlines()] if (folder / "heap.jsonl").exists() else []
    for name, at in (("first", looks[:1]), ("half", looks[len(looks) // 2:][:1]), ("end", looks[-1:])):
        for look in at:
            traced = f", Python heap traced {look['python_traced'] / 2**20:.1f} MB" if "python_traced" in look else ""
            log(f"allocators at {name} (t={look['at']:.0f}s): malloc in use {look['malloc_in_use'] / 2**20:.1f} MB, "
                f"freed but kept {look['malloc_free_kept'] / 2**20:.1f} MB; Python blocks {look['python_blocks']:,}{traced}")
    snapshots = sorted(folder.glob("heap-*.snapshot"))
    if len(snapshots) < 2:
        return
    middle, last = tracemalloc.Snapshot.load(str(snapshots[len(snapshots) // 2])), tracemalloc.Snapshot.load(str(snapshots[-1]))
    log(f"tracemalloc: Python heap growth from {snapshots[len(snapshots) // 2].stem} to {snapshots[-1].stem} by line:")
    for stat in last.compare_to(middle, "lineno")[:top]:
        frame = stat.traceback[0]
        log(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks  now {stat.size / 1024:9.1f} KiB  "
            f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--fuzz-per-method", type=int, default=50)
    parser.add_argument("--response-cache-bytes", type=int, default=None,
                        help="the replica's RPC_RESPONSE_CACHE_BYTES (default: the setting's): small bounds fill in minutes")
    parser.add_argument("--heap-every", type=float, default=60.0, metavar="SECONDS",
                        help="how often the replica notes what its allocators hold (bench/memtrace)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also trace the replica's Python heap (a snapshot each --heap-every) and report its growth by "
                             "line (slows the replica and adds to its RSS)")
    args = parser.parse_args()
    bodies = fuzz_bodies(args.fuzz_per_method)
    log(f"generated {len(bodies)} request bodies from the execution-apis spec")
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp, LocalBroker(log_path=Path(tmp) / "broker.log") as broker:
        cluster = Cluster(broker.url, Path(tmp))
        heaps = Path(tmp) / "heaps"
        try:
            cluster.start_dev_master(free_port(), block_time=0.2)
            extra = {"filter_timeout": "60"}
            if args.response_cache_bytes is not None:
                extra["rpc_response_cache_bytes"] = str(args.response_cache_bytes)
            with watched(heaps, args.heap_every, args.tracemalloc):
                replica = cluster.start_replica("soak", **extra)
            replica.wait_ready()
            log(f"replica up (pid {replica.process.pid}), RSS {rss_mb(replica.process.pid):.1f} MB; "
                f"soaking {args.seconds:.0f}s with {args.clients} clients")
            assert broker.process is not None
            samples = asyncio.run(soak(replica, broker.process.pid, bodies, args.seconds, args.clients, args.every))
            report(samples)
            log(f"replica alive: {replica.process.poll() is None}")
            heap_report(heaps)
        finally:
            cluster.stop_all()


@contextlib.contextmanager
def watched(folder: Path, every: float, trace: bool) -> Iterator[None]:
    """Processes started inside note what their allocators hold into ``folder`` (``bench/memtrace``)."""
    folder.mkdir()
    saved = dict(os.environ)
    os.environ.update(SOAK_HEAP_DIR=str(folder), SOAK_HEAP_EVERY=str(every), SOAK_TRACEMALLOC="1" if trace else "0",
                      PYTHONPATH=os.pathsep.join([str(Path(__file__).with_name("memtrace")), os.environ.get("PYTHONPATH", "")]))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


if __name__ == "__main__":
    main()
