"""Soak: a real replica's memory and lag over a long fuzz and load run.

Runs a local broker, a dev master mining a block every 0.2 s and one replica worker,
then for ``--seconds`` sends, from ``--clients`` concurrent clients:

- spec fuzz: requests generated from the execution-apis schemas (``tests/rpc/spec.py``),
  valid and broken params for every method, plus unknown method names, and batches of them;
- load: eth_blockNumber, eth_getBalance of random accounts, eth_call with state overrides;
- per-client structures: eth_newFilter installs never polled, WebSocket clients that
  subscribe and leave.

Every ``--every`` seconds it prints the replica's RSS (``/proc/PID/status``), its lag
(``/readyz``), the requests answered and shed; at the end the RSS at start, peak and end
and its growth over the second half of the run, which is what a bound looks like: the
caches fill, then the line goes flat.

    .venv/bin/python bench/soak.py --seconds 600
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from deploy.localbroker import LocalBroker, free_port  # noqa: E402
from tests.integration.harness import Cluster, Replica, get_json  # noqa: E402
from tests.rpc.spec import Spec  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


async def soak(replica: Replica, bodies: list[bytes], seconds: float, clients: int, every: float) -> list[tuple[float, float, Any]]:
    counts: dict[str, int] = {}
    samples: list[tuple[float, float, Any]] = []
    started = time.monotonic()
    deadline = started + seconds
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients + 8), timeout=timeout) as session:
        workers = [asyncio.ensure_future(client(session, replica.url + "/", bodies, deadline, n, counts)) for n in range(clients)]
        workers += [asyncio.ensure_future(websocket_churn(session, replica.url.replace("http", "ws") + "/", deadline, counts))
                    for _ in range(4)]
        while time.monotonic() < deadline:
            await asyncio.sleep(min(every, max(deadline - time.monotonic(), 0)))
            sample = (time.monotonic() - started, rss_mb(replica.process.pid), await asyncio.to_thread(lag, replica))
            samples.append(sample)
            log(f"t={sample[0]:6.0f}s  RSS {sample[1]:7.1f} MB  lag {sample[2]}  {dict(sorted(counts.items()))}")
        await asyncio.gather(*workers)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--fuzz-per-method", type=int, default=50)
    args = parser.parse_args()
    bodies = fuzz_bodies(args.fuzz_per_method)
    log(f"generated {len(bodies)} request bodies from the execution-apis spec")
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp, LocalBroker(log_path=Path(tmp) / "broker.log") as broker:
        cluster = Cluster(broker.url, Path(tmp))
        try:
            cluster.start_dev_master(free_port(), block_time=0.2)
            replica = cluster.start_replica("soak", filter_timeout="60")
            replica.wait_ready()
            log(f"replica up (pid {replica.process.pid}), RSS {rss_mb(replica.process.pid):.1f} MB; "
                f"soaking {args.seconds:.0f}s with {args.clients} clients")
            samples = asyncio.run(soak(replica, bodies, args.seconds, args.clients, args.every))
            first, peak, last = samples[0][1], max(s[1] for s in samples), samples[-1][1]
            half = samples[len(samples) // 2][1]
            lags = [s[2] for s in samples if isinstance(s[2], int)]
            log(f"RSS first sample {first:.1f} MB, peak {peak:.1f} MB, end {last:.1f} MB; "
                f"second half grew {last - half:+.1f} MB; lag max {max(lags) if lags else 'unknown'} "
                f"(replica alive: {replica.process.poll() is None}, pid {os.getpid()} drove it)")
        finally:
            cluster.stop_all()


if __name__ == "__main__":
    main()
