"""Filters, subscriptions and the load balancer: what sharing them across the cluster costs.

    .venv/bin/python bench/filters.py [--seconds 5] [--filters 1000] [--subscribers 100]

Runs a real local broker, a dev master mining a block every 0.5 s, three replicas
(``ra``, ``rb``, and ``rc`` whose filter barrier is off: ``FILTER_SYNC_TIMEOUT``
1 ms, so it shows the raw propagation) and HAProxy in front of ``ra`` and ``rb``.
Prints:

- ``eth_getFilterChanges`` requests/s on one replica with N installed block filters
  (wrk, each request a different filter), beside ``eth_chainId`` on the same replica;
- propagation of a filter's install and of a poll's cursor across replicas, p50/p99:
  the raw time until another replica's reader holds the record (polling ``rc``, no
  barrier), and the latency of a first poll on ``rb`` right after ``ra`` answered
  (with the barrier, which makes it always find the new state);
- WebSocket fan-out to N subscribers of ``newHeads`` on one replica: latency from the
  master's answer to ``eth_sendRawTransaction`` (the dev master mines on receipt) to
  each subscriber's notification, p50/p99, and the spread between the first and the
  last subscriber of each head (the fan-out's own cost);
- ``eth_blockNumber`` requests/s through HAProxy against one replica direct.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from eth_account import Account  # noqa: E402

from bench.rpc import LUA, ensure_wrk, run_wrk  # noqa: E402
from chain.dev import dev_accounts  # noqa: E402
from deploy.haproxy import Backend, HAProxy, render  # noqa: E402
from deploy.localbroker import LocalBroker, free_port  # noqa: E402
from tests.integration.harness import Cluster, post_json, wait_for  # noqa: E402


def log(message: str) -> None:
    print(message, flush=True)


def rpc(url: str, method: str, *params: Any) -> Any:
    return post_json(url + "/", {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})


def result(url: str, method: str, *params: Any) -> Any:
    answer = rpc(url, method, *params)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1000:.1f} ms, p99 {pct(values, 99) * 1000:.1f} ms (n={len(values)})"


POLL_LUA = LUA.format(body="") + """
ids = {}
for line in io.lines("{IDS}") do table.insert(ids, line) end
counter = 0
request = function()
  counter = counter + 1
  local id = ids[(counter % #ids) + 1]
  return wrk.format("POST", "/", {["Content-Type"] = "application/json"},
    '{"jsonrpc":"2.0","id":1,"method":"eth_getFilterChanges","params":["' .. id .. '"]}')
end
"""


def poll_rate(wrk: str, url: str, ids: list[str], seconds: float, workdir: Path, connections: int = 32) -> Any:
    """run_wrk with a request() that cycles through the filter ids: (polls answered with a result per second, p50 ms,
    p99 ms, other answers, socket errors). A poll refused as busy (-32005: more calls waiting on the broker than its
    bound) is an "other answer", not a poll."""
    import subprocess

    script = workdir / "poll.lua"
    id_file = workdir / "ids.txt"
    id_file.write_text("\n".join(ids) + "\n")
    script.write_text(POLL_LUA.replace("{IDS}", str(id_file)))
    args = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s", "-s", str(script), url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30)
    line = next((line for line in done.stdout.splitlines() if line.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(done.stdout + done.stderr)
    requests, micros, p50, p99, bad, errors = (int(float(v)) for v in line.split()[1:])
    return (requests - bad) / (micros / 1e6), p50 / 1000, p99 / 1000, bad, errors


async def install_many(url: str, count: int) -> list[str]:
    """``count`` block filters, 16 installs at a time: well within the calls a replica lets wait on the broker
    at once (``RPC_MAX_BROKER_WAITING``, 64); more would be answered busy (HTTP 503, -32005)."""
    async with aiohttp.ClientSession() as session:
        semaphore = asyncio.Semaphore(16)

        async def one() -> str:
            async with semaphore, session.post(url + "/", json={"jsonrpc": "2.0", "id": 1, "method": "eth_newBlockFilter", "params": []}) as response:
                answer = await response.json()
            if "result" not in answer:
                raise RuntimeError(f"eth_newBlockFilter: {answer}")
            return answer["result"]

        return list(await asyncio.gather(*(one() for _ in range(count))))


def propagation(ra: str, rb: str, rc: str, rounds: int) -> tuple[list[float], list[float], list[float], list[float]]:
    """(raw install, raw cursor, barrier install, barrier cursor) times, seconds."""
    raw_install, raw_cursor, first_poll, cursor_poll = [], [], [], []
    for _ in range(rounds):
        fid = result(ra, "eth_newBlockFilter")
        acked = time.perf_counter()
        while "error" in rpc(rc, "eth_getFilterChanges", fid):
            pass
        raw_install.append(time.perf_counter() - acked)
        fid2 = result(ra, "eth_newBlockFilter")
        start = time.perf_counter()
        result(rb, "eth_getFilterChanges", fid2)
        first_poll.append(time.perf_counter() - start)
        # Cursor: wait for a new block on ra, poll it there, then see the cursor elsewhere.
        head = int(result(ra, "eth_blockNumber"), 16)
        wait_for(lambda: int(result(ra, "eth_blockNumber"), 16) > head and int(result(rc, "eth_blockNumber"), 16) > head
                 and int(result(rb, "eth_blockNumber"), 16) > head, 5, "a new block")
        assert result(ra, "eth_getFilterChanges", fid)
        acked = time.perf_counter()
        while result(rc, "eth_getFilterChanges", fid):  # rc returns the same block again until it read ra's cursor
            pass
        raw_cursor.append(time.perf_counter() - acked)
        assert result(ra, "eth_getFilterChanges", fid2)
        start = time.perf_counter()
        again = result(rb, "eth_getFilterChanges", fid2)
        cursor_poll.append(time.perf_counter() - start)
        assert again == [], "a duplicate across replicas despite the barrier"
    return raw_install, raw_cursor, first_poll, cursor_poll


async def fanout(ws_url: str, master: str, subscribers: int, blocks: int) -> tuple[list[float], list[float], int]:
    _, key = dev_accounts()[2]
    received: dict[int, list[float]] = {}
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(ws_url) for _ in range(subscribers)]
        for ws in sockets:
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]})
            await ws.receive_json()

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for message in ws:
                now = time.perf_counter()
                number = int(json.loads(message.data)["params"]["result"]["number"], 16)
                received.setdefault(number, []).append(now)

        readers = [asyncio.create_task(read(ws)) for ws in sockets]
        sent_at: dict[int, float] = {}
        loop = asyncio.get_running_loop()
        for nonce in range(blocks):
            signed = Account.sign_transaction({"to": "0x" + "22" * 20, "value": 1, "gas": 21_000, "maxFeePerGas": 10**10,
                                               "maxPriorityFeePerGas": 10**9, "nonce": nonce, "chainId": 1337, "type": 2}, key)
            tx_hash = await loop.run_in_executor(None, result, master, "eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())
            at = time.perf_counter()
            receipt = await loop.run_in_executor(None, result, master, "eth_getTransactionReceipt", tx_hash)
            sent_at[int(receipt["blockNumber"], 16)] = at
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)
        for task in readers:
            task.cancel()
        for ws in sockets:
            await ws.close()
    latencies = [t - sent_at[n] for n, times in received.items() if n in sent_at for t in times]
    spreads = [max(times) - min(times) for n, times in received.items() if n in sent_at]
    missing = sum(subscribers - len(received.get(n, [])) for n in sent_at)
    return latencies, spreads, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--filters", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-filters-") as tmp, LocalBroker(log_path=Path(tmp) / "broker.log") as broker:
        root = Path(tmp)
        cluster = Cluster(broker.url, root)
        haproxy = None
        try:
            master_port = free_port()
            master = f"http://127.0.0.1:{master_port}"
            cluster.start_dev_master(master_port, block_time=0.5)
            ra, rb = cluster.start_replica("ra"), cluster.start_replica("rb")
            rc = cluster.start_replica("rc", filter_sync_timeout="0.001")
            for replica in (ra, rb, rc):
                replica.wait_ready()
            stats_port, lb_port = free_port(), free_port()
            config = root / "haproxy.cfg"
            config.write_text(render([Backend("ra", f"127.0.0.1:{ra.port}"), Backend("rb", f"127.0.0.1:{rb.port}")],
                                     bind=f"127.0.0.1:{lb_port}", stats_bind=f"127.0.0.1:{stats_port}", inter="500ms", fall=2, rise=2))
            haproxy = HAProxy(config, lb_port, stats_port, root / "haproxy.log").start()
            log(f"cluster up: master, 3 replicas, HAProxy (fetch wait {20} ms)")

            started = time.perf_counter()
            ids = asyncio.run(install_many(ra.url, args.filters))
            log(f"installed {len(ids)} block filters in {time.perf_counter() - started:.2f}s "
                f"({len(ids) / (time.perf_counter() - started):.0f}/s, each acknowledged by the broker)")
            rate, p50, p99, bad, errors = poll_rate(wrk, ra.url + "/", ids, args.seconds, root)
            wide = poll_rate(wrk, ra.url + "/", ids, args.seconds, root, connections=128)
            log(f"eth_getFilterChanges, wrk -c128: {wide[0]:.0f} req/s (p50 {wide[1]:.1f} ms, p99 {wide[2]:.1f} ms, "
                f"bad {wide[3]}, socket errors {wide[4]}): a poll waits for the barrier (1-2 fetch waits) and, when its "
                f"cursor moved, for the broker's ack, so the rate grows with concurrency")
            noop = run_wrk(wrk, ra.url + "/", '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}', args.seconds, 32, root)
            log(f"eth_getFilterChanges over {len(ids)} filters, one replica, wrk -c32: {rate:.0f} req/s "
                f"(p50 {p50:.1f} ms, p99 {p99:.1f} ms, bad {bad}, socket errors {errors}); "
                f"eth_chainId on the same replica: {noop.rate:.0f} req/s (p50 {noop.p50_ms:.1f} ms)")

            raw_install, raw_cursor, first_poll, cursor_poll = propagation(ra.url, rb.url, rc.url, args.rounds)
            log(f"propagation, raw (until another replica's reader holds it): install {ms(raw_install)}; cursor {ms(raw_cursor)}")
            log(f"poll on another replica right after an answer (barrier on): first poll {ms(first_poll)}; "
                f"poll after a cursor move {ms(cursor_poll)}; duplicates: 0")

            latencies, spreads, missing = asyncio.run(fanout(f"ws://127.0.0.1:{ra.port}/", master, args.subscribers, 20))
            log(f"WebSocket fan-out, {args.subscribers} newHeads subscribers on one replica: head latency from the master's "
                f"answer {ms(latencies)}; first-to-last subscriber spread {ms(spreads)}; missing notifications {missing}")

            body = '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
            direct = run_wrk(wrk, ra.url + "/", body, args.seconds, 32, root)
            balanced = run_wrk(wrk, haproxy.url + "/", body, args.seconds, 32, root)
            log(f"eth_blockNumber, wrk -c32: one replica direct {direct.rate:.0f} req/s (p50 {direct.p50_ms:.1f} ms); "
                f"through HAProxy over two {balanced.rate:.0f} req/s (p50 {balanced.p50_ms:.1f} ms); "
                f"ratio {balanced.rate / direct.rate:.2f} (same 2-core box: HAProxy, wrk and both replicas share it)")
        finally:
            if haproxy is not None:
                haproxy.stop()
            cluster.stop_all()


if __name__ == "__main__":
    main()
