"""What an idle replica costs: CPU and wakeups per second, per thread.

    .venv/bin/python bench/idle.py [--seconds 10] [--rounds 3] [--fetch-wait 20 500]

Starts a real local broker, a dev master mining a block every second (and a
heartbeat every 0.5 s, as the end-to-end tests run it), and one replica worker for
each fetch wait (``FETCH_MAX_WAIT_MS``). Once the replica is ready, it serves no
requests while this samples its CPU (user + system, from /proc) and its threads'
wakeups (voluntary context switches: the event loop, the consumer thread that runs
Faust's fetch loop, LevelDB's and the RPC's threads) for ``--seconds``,
``--rounds`` times, and prints every round. The box is shared, so the spread
between rounds says how far one figure can be trusted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rpc import cpu_seconds, log  # noqa: E402
from deploy.localbroker import LocalBroker, free_port  # noqa: E402
from tests.integration.harness import Cluster, stop  # noqa: E402


def wakeups(pid: int) -> Counter[str]:
    """Wakeups so far (voluntary context switches: the thread slept and was woken), per thread of process
    ``pid`` ("main": its event loop). Preemptions are left out: they count the box's load, not the replica."""
    counts: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text().splitlines()
        except FileNotFoundError:  # the thread ended while we looked
            continue
        name = "main" if task.name == str(pid) else f"thread {task.name}"
        counts[name] += sum(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt_switches"))
    return counts


def sample(pid: int, seconds: float) -> tuple[float, Counter[str]]:
    """The share of a core used and the wakeups per second per thread, over ``seconds``."""
    cpu, before = cpu_seconds(pid), wakeups(pid)
    time.sleep(seconds)
    after = wakeups(pid)
    per_second = Counter({name: round((after[name] - before.get(name, 0)) / seconds) for name in after})
    return (cpu_seconds(pid) - cpu) / seconds, per_second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per fetch wait (default 3)")
    parser.add_argument("--fetch-wait", type=int, nargs="+", default=[20, 500], help="FETCH_MAX_WAIT_MS values (default 20 500)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ethercattle-bench-idle-"))
    log(f"work dir {root}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    results: list[tuple[int, float, Counter[str]]] = []
    with LocalBroker(log_path=root / "broker.log") as broker:
        cluster = Cluster(broker.url, root, name="benchidle")
        try:
            cluster.start_dev_master(free_port(), block_time=1.0)
            for wait in args.fetch_wait:
                replica = cluster.spawn_replica(f"r{wait}", fetch_max_wait_ms=str(wait))
                replica.wait_ready(90)
                time.sleep(2)  # the start's last timers and table recoveries settle
                for _ in range(args.rounds):
                    cpu, per_second = sample(replica.process.pid, args.seconds)
                    results.append((wait, cpu, per_second))
                    log(f"FETCH_MAX_WAIT_MS={wait}: {cpu:.1%} of a core, {sum(per_second.values())} wakeups/s")
                replica.stop()
        finally:
            for process in cluster.processes:
                stop(process)
    print()
    print(f"An idle replica (no requests; a dev block every second), {args.rounds} x {args.seconds:g}s per fetch wait; "
          f"load average {os.getloadavg()[0]:.2f} after")
    print(f"{'FETCH_MAX_WAIT_MS':<19}{'CPU':>7}{'wakeups/s':>11}  by thread")
    for wait, cpu, per_second in results:
        threads = ", ".join(f"{name} {count}" for name, count in per_second.most_common() if count)
        print(f"{wait:<19}{cpu:>7.1%}{sum(per_second.values()):>11}  {threads}")
    print(f"logs in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
