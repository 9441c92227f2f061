"""Scale-out benchmark: 1 and then 2 replicas behind HAProxy on this box.

    .venv/bin/python bench/cluster.py [--duration 5] [--warmup 1] [--connections 64]

Starts a real local broker, a dev master and replica workers
(``faust -L uvloop -A pipeline worker``), puts HAProxy in front (the production
template: round robin over replicas whose /readyz is 200) and measures with wrk
(``-t1 --latency``) through HAProxy, first with one replica in the backend, then
with two:

- ``eth_blockNumber`` and ``eth_getBalance(latest)``, the same request every time
  (what polling clients send: the replicas answer from their response caches);
- ``eth_getBalance`` of a different address on every request (wrk's Lua counts
  through addresses), so every call misses the cache and reads the state.

It also measures the CPU an idle replica burns (its agents, timers and fetch
loops), the fixed part of a replica's cost. For each call: req/s, p50/p99 and CPU per request, split into the replicas' own CPU
(their processes' user + system time over the run, from /proc) and HAProxy's.
Load generator, balancer and replicas share this machine's cores, so adding a
replica adds throughput only while cores are idle: the CPU per request is the
figure that carries to a larger machine (README: the per-replica cost model).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rpc import LUA, RECIPIENT, Measure, cpu_seconds, ensure_wrk, log, run_wrk  # noqa: E402
from deploy.haproxy import Backend, HAProxy, render  # noqa: E402
from deploy.localbroker import LocalBroker, free_port  # noqa: E402
from tests.integration.harness import BIN, Cluster, Replica, stop, wait_for  # noqa: E402

DISTINCT_LUA = LUA.replace('wrk.body = [==[{body}]==]\n', '''counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x%040x","latest"]}}', counter)
  return wrk.format(nil, nil, nil, body)
end
''').format()
"""wrk's script with a request function: eth_getBalance of address 1, 2, 3, ... (never the same twice)."""

CALLS = [
    ("eth_blockNumber (repeated)", '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'),
    ("eth_getBalance latest (repeated)",
     f'{{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["{RECIPIENT}","latest"]}}'),
    ("eth_getBalance (distinct addresses)", None),
]


@dataclass
class Row:
    replicas: int
    call: str
    measure: Measure
    replica_cpu: float
    balancer_cpu: float

    def per_request_us(self, seconds: float) -> float:
        return seconds / self.measure.requests * 1e6 if self.measure.requests else 0.0


def start_replica_on(cluster: Cluster, replica_id: str, port: int) -> Replica:
    env = cluster.env(cluster.replica_dir(replica_id), replica_id=replica_id)
    args = [str(BIN / "faust"), "-L", "uvloop", "-A", "pipeline", "worker", "--web-port", str(port), "--web-host", "127.0.0.1"]
    return Replica(cluster, replica_id, port, cluster.spawn(args, env, replica_id))


def balance(root: Path, replicas: list[Replica]) -> HAProxy:
    port, stats_port = free_port(), free_port()
    config = root / f"haproxy-{len(replicas)}.cfg"
    config.write_text(render([Backend(r.replica_id, f"127.0.0.1:{r.port}") for r in replicas], bind=f"127.0.0.1:{port}",
                             stats_bind=f"127.0.0.1:{stats_port}"))  # production checks: quicker ones flap under saturation
    haproxy = HAProxy(config, port, stats_port, root / "haproxy.log").start()
    wait_for(lambda: all(row["status"] == "UP" for row in haproxy.stats().values()), 10, "HAProxy to see every replica UP")
    return haproxy


def idle_cpu(replica: Replica, seconds: float = 3.0) -> float:
    """The share of one core an idle replica uses (its agents, timers and consumer fetch loops)."""
    before = cpu_seconds(replica.process.pid)
    time.sleep(seconds)
    return (cpu_seconds(replica.process.pid) - before) / seconds


def measure_all(wrk: str, haproxy: HAProxy, replicas: list[Replica], args: argparse.Namespace, root: Path) -> list[Row]:
    rows = []
    url = haproxy.url + "/"
    for name, body in CALLS:
        def load(seconds: float) -> Measure:
            if body is None:
                return run_distinct(wrk, url, seconds, args.connections, root)
            return run_wrk(wrk, url, body, seconds, args.connections, root)

        if args.warmup > 0:
            load(args.warmup)
        before = [cpu_seconds(r.process.pid) for r in replicas]
        balancer_before = cpu_seconds(haproxy.process.pid) if haproxy.process else 0.0
        measured = load(args.duration)
        replica_cpu = sum(cpu_seconds(r.process.pid) - b for r, b in zip(replicas, before))
        balancer_cpu = (cpu_seconds(haproxy.process.pid) if haproxy.process else 0.0) - balancer_before
        rows.append(Row(len(replicas), name, measured, replica_cpu, balancer_cpu))
        log(f"{len(replicas)} replica(s), {name}: {measured.rate:,.0f} req/s, p99 {measured.p99_ms:.1f} ms")
    return rows


def run_distinct(wrk: str, url: str, seconds: float, connections: int, root: Path) -> Measure:
    """wrk with the distinct-address script (run_wrk writes a constant-body script)."""
    script = root / "distinct.lua"
    script.write_text(DISTINCT_LUA)
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s",
               "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    line = next((line for line in done.stdout.splitlines() if line.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    requests, micros, p50, p99, bad, errors = (int(float(v)) for v in line.split()[1:])
    return Measure(requests, micros / 1e6, p50 / 1000, p99 / 1000, bad, errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds wrk measures each call (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured load before each measure")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64; always -t1)")
    args = parser.parse_args()
    wrk = ensure_wrk()
    root = Path(tempfile.mkdtemp(prefix="ethercattle-bench-cluster-"))
    load_before = os.getloadavg()
    log(f"work dir {root}; load average {load_before[0]:.2f} on {os.cpu_count()} cores")
    rows: list[Row] = []
    idle = 0.0
    started = time.monotonic()
    with LocalBroker(log_path=root / "broker.log") as broker:
        cluster = Cluster(broker.url, root, name="benchcluster")
        haproxy: HAProxy | None = None
        try:
            cluster.start_dev_master(free_port(), block_time=1.0)
            replicas = [start_replica_on(cluster, "r1", free_port())]
            replicas[0].wait_ready(90)
            idle = idle_cpu(replicas[0])
            for count in (1, 2):
                if count == 2:
                    replicas.append(start_replica_on(cluster, "r2", free_port()))
                    replicas[1].wait_ready(90)
                haproxy = balance(root, replicas)
                rows += measure_all(wrk, haproxy, replicas, args, root)
                haproxy.stop()
                haproxy = None
        finally:
            if haproxy is not None:
                haproxy.stop()
            for process in cluster.processes:
                stop(process)

    load_after = os.getloadavg()
    print()
    print(f"Replicas behind HAProxy, wrk -t1 -c{args.connections}, {args.duration:g}s per call after {args.warmup:g}s warm-up; "
          f"wrk, HAProxy, the master and the replicas share this machine's {os.cpu_count()} cores; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (other work makes these figures noisy)")
    header = f"{'replicas':<9}{'call':<38}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'replica CPU us/req':>20}{'HAProxy CPU us/req':>20}"
    print(header)
    print("-" * len(header))
    for row in rows:
        if not row.measure.clean:
            print(f"! {row.replicas} replica(s), {row.call}: {row.measure.bad_answers} answers were not HTTP 200 with a result, "
                  f"{row.measure.socket_errors} socket errors (a fast error inflates req/s)")
    for row in rows:
        flag = "" if row.measure.clean else "!"
        print(f"{row.replicas:<9}{row.call:<38}{row.measure.rate:>8,.0f}{flag:1}{row.measure.p50_ms:>8.2f}{row.measure.p99_ms:>8.2f}"
              f"{row.per_request_us(row.replica_cpu):>20.0f}{row.per_request_us(row.balancer_cpu):>20.0f}")
    print(f"an idle replica (no requests; a dev block every second) uses {idle:.1%} of a core: "
          "its agents, timers and consumer fetch loops")
    print(f"whole run: {time.monotonic() - started:.0f}s; logs in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
