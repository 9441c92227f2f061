"""Bootstrap benchmark: a new replica from a snapshot plus a backlog, beside one replaying the whole log.

    .venv/bin/python bench/bootstrap.py [--history 1000000] [--backlogs 0,10000,100000]

Runs a real local broker, a master in this process (heartbeating throughout,
so replicas can turn ready) and ``faust -A pipeline worker`` replicas as
processes, as the integration tests do. The master writes ``--history``
records (single puts of a 32-byte random key and a 100-byte random value, the
shape of trie nodes); a first replica applies them and is snapshotted while it
runs (``ethercattle snapshot create --url``). Then for each backlog N the master
writes more records and a new replica is started from the snapshot
(``ethercattle snapshot restore`` + worker), and one more replica replays the
whole log from offset 0. Prints, per run: records to apply, restore time,
time from worker start to the master's sequence and to ``/readyz`` 200, and
the total from nothing to ready.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.localbroker import LocalBroker  # noqa: E402
from master.node import MasterNode  # noqa: E402
from cluster.settings import Settings  # noqa: E402
from snapshot.archive import read_manifest  # noqa: E402
from tests.integration.harness import SECRET, Cluster  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class BackgroundMaster:
    """A master node on its own event loop thread: writes on request, heartbeats all along."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.node = MasterNode(settings)
        self._run(self.node.__aenter__())

    def _run(self, coroutine):  # noqa: ANN001, ANN202
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def write(self, records: int) -> tuple[int, float]:
        """Commit ``records`` puts and wait for the broker's acknowledgements; (last sequence, seconds)."""

        async def write() -> int:
            db = self.node.db
            assert db is not None
            for start in range(0, records, 1000):
                for _ in range(min(1000, records - start)):
                    db[os.urandom(32)] = os.urandom(100)
                await asyncio.sleep(0)
            await self.node.flush()
            return db.sequence

        started = time.perf_counter()
        last = self._run(write())
        return last, time.perf_counter() - started

    def close(self) -> None:
        self._run(self.node.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Run:
    label: str
    to_apply: int
    restore: float
    to_sequence: float
    to_ready: float

    @property
    def total(self) -> float:
        return self.restore + self.to_ready


def start_and_time(cluster: Cluster, replica_id: str, target: int, attempts: int = 3) -> tuple[float, float, dict]:
    """Seconds from spawning a worker to the target sequence, and to /readyz 200.

    A worker that crashes at start on aiokafka's fetcher race (``KeyError:
    TopicPartition`` in ``fetched_records`` after the resume seek) is started
    again on the same datadir and the crash is reported; the time counts from
    the successful start.
    """
    for attempt in range(1, attempts + 1):
        started = time.perf_counter()
        replica = cluster.start_replica(replica_id)
        try:
            body = replica.wait_sequence(target, timeout=600)
            at_sequence = time.perf_counter() - started
            replica.wait_ready(timeout=120)
        except (AssertionError, TimeoutError):
            replica.stop()
            if attempt < attempts and "KeyError(TopicPartition" in replica.log():
                print(f"  note: {replica_id} crashed at start (aiokafka fetcher KeyError race); starting it again", flush=True)
                continue
            raise
        at_ready = time.perf_counter() - started
        replica.stop()
        return at_sequence, at_ready, body
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000, help="records in the log before the snapshot")
    parser.add_argument("--backlogs", default="0,10000,100000", help="records written after the snapshot, one run each")
    parser.add_argument("--workdir", help="keep datadirs and process logs here (default: a temporary directory, removed)")
    args = parser.parse_args()
    backlogs = sorted(int(n) for n in args.backlogs.split(","))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    with tempfile.TemporaryDirectory(prefix="ethercattle-bootstrap-") as tmp:
        root = Path(args.workdir or tmp)
        root.mkdir(parents=True, exist_ok=True)
        measure(root, args.history, backlogs)


def measure(root: Path, history_records: int, backlogs: list[int]) -> None:
    with LocalBroker(log_path=root / "broker.log") as broker:
        cluster = Cluster(broker.url, root)
        master = BackgroundMaster(Settings(broker=broker.url, cluster=cluster.name, secret=SECRET,
                                           datadir=cluster.master_dir, heartbeat_interval=0.5))
        runs: list[Run] = []
        try:
            history, seconds = master.write(history_records)
            print(f"master wrote {history} records in {seconds:.1f}s ({history / seconds:,.0f} records/s)", flush=True)
            source = cluster.start_replica("source")
            source.wait_sequence(history, timeout=600)
            started = time.perf_counter()
            made = cluster.ethercattle("snapshot", "create", "--url", source.url, "--out", str(root / "snap.tar.gz"),
                                       datadir=cluster.replica_dir("source"))
            assert made.returncode == 0, made.stderr
            snap_seconds = time.perf_counter() - started
            manifest = read_manifest(root / "snap.tar.gz")
            print(f"snapshot of the running replica: {manifest.keys:,} keys, {manifest.size / 1e6:.1f} MB on disk, "
                  f"{(root / 'snap.tar.gz').stat().st_size / 1e6:.1f} MB archived, {snap_seconds:.1f}s (CLI included)", flush=True)
            source.stop()

            written = 0
            target = history
            for backlog in backlogs:
                if backlog > written:
                    target, _ = master.write(backlog - written)
                    written = backlog
                replica_id = f"snap{backlog}"
                started = time.perf_counter()
                restored = cluster.ethercattle("snapshot", "restore", "--from", str(root / "snap.tar.gz"),
                                               datadir=cluster.replica_dir(replica_id))
                assert restored.returncode == 0, restored.stderr
                restore_seconds = time.perf_counter() - started
                at_sequence, at_ready, body = start_and_time(cluster, replica_id, target)
                runs.append(Run(f"snapshot + {backlog:,}", body["records_applied"], restore_seconds, at_sequence, at_ready))
                print(f"  {runs[-1].label}: {runs[-1].total:.1f}s to ready", flush=True)

            at_sequence, at_ready, body = start_and_time(cluster, "replay", target)
            runs.append(Run("replay from offset 0", body["records_applied"], 0.0, at_sequence, at_ready))
        finally:
            master.close()
            cluster.stop_all()

    print()
    print(f"{'run':<24} {'records applied':>16} {'restore s':>10} {'start->seq s':>13} {'start->ready s':>14} {'total s':>8}")
    for run in runs:
        print(f"{run.label:<24} {run.to_apply:>16,} {run.restore:>10.1f} {run.to_sequence:>13.1f} {run.to_ready:>14.1f} {run.total:>8.1f}")


if __name__ == "__main__":
    main()
