"""Everything on one machine: broker, dev master, replicas (with the emitter), until Ctrl-C.

This is what ``deploy/dev.sh up`` (``ethercattle up``) runs. Each process logs
to DATADIR/<name>.log; the master's RPC, each replica's RPC and status page are
printed once the replicas are ready. A child that exits after that is reported
and everything stops (``deploy.supervise``).

``--clusters N`` runs N clusters behind the one HAProxy, as production does to
survive a master (or a broker) going away: ``local-a``, ``local-b``, ... each
with its own broker, master and replicas in DATADIR/<cluster>/, and each
replica's status page showing every cluster (``ETHERCATTLE_STATUS_PEERS``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from deploy.balancer import start_balancer
from deploy.haproxy import HAProxy
from deploy.localbroker import LocalBroker, bind_error, wait_for_port
from deploy.supervise import Child, death_notice, wait_for_stop_or_exit

CLUSTER = "local"
MAX_CLUSTERS = 9


@dataclass(frozen=True)
class LocalCluster:
    """One cluster of ``up``: its name, ports and directory, and how its processes are named."""

    name: str
    datadir: Path
    broker_port: int
    master_port: int
    replica_ports: list[int]
    label: str
    """Prefix of its processes' names: empty for a lone cluster, ``local-b/`` among several."""

    def server(self, index: int) -> str:
        """Its replica's name in HAProxy (whose names allow no ``/``)."""
        return self.label.replace("/", "-") + f"replica-{index}"


def plan_clusters(datadir: Path, clusters: int, replicas: int, broker_port: int, rpc_port: int,
                  master_port: int) -> list[LocalCluster]:
    """The clusters ``up`` runs. A lone one is ``local`` in DATADIR, as always; several are local-a,
    local-b, ... each in DATADIR/<name>, the k-th (from 0) with broker port BROKER_PORT+k, master
    port MASTER_PORT-k, and the next REPLICAS ports from RPC_PORT."""
    if clusters == 1:
        return [LocalCluster(CLUSTER, datadir, broker_port, master_port, [rpc_port + i for i in range(replicas)], "")]
    made = []
    for k, letter in enumerate(string.ascii_lowercase[:clusters]):
        name = f"{CLUSTER}-{letter}"
        first = rpc_port + k * replicas
        made.append(LocalCluster(name, datadir / name, broker_port + k, master_port - k,
                                 [first + i for i in range(replicas)], f"{name}/"))
    return made


def port_problem(planned: list[LocalCluster], lb_port: int) -> str | None:
    """Why ``up`` cannot listen where it planned to (a port planned twice, or one taken), or None.

    Asked before anything starts: a taken port otherwise surfaced a minute later as a master that
    never answered, or a replica that died, with the cause only in a log."""
    uses = [(port, f"{cluster.label}{what}") for cluster in planned
            for port, what in [(cluster.broker_port, "broker"), (cluster.master_port, "master RPC"),
                               *((port, f"replica-{i} RPC") for i, port in enumerate(cluster.replica_ports))]]
    uses.append((lb_port, "cluster RPC (HAProxy)"))
    seen: dict[int, str] = {}
    for port, what in uses:
        if port in seen:
            return f"port {port} is planned for both the {seen[port]} and the {what}"
        seen[port] = what
    for port, what in uses:
        error = bind_error(port)
        if error is not None:
            return f"port {port} (the {what}) is not free: {error}"
    return None


def status_peers(cluster: LocalCluster, clusters: list[LocalCluster]) -> str:
    """``ETHERCATTLE_STATUS_PEERS`` of ``cluster``'s replicas: every replica of every other cluster."""
    return ",".join(f"{other.name}=http://127.0.0.1:{port}"
                    for other in clusters if other is not cluster for port in other.replica_ports)


def _env(cluster: str, broker: str, datadir: Path, secret: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ETHERCATTLE_BROKER=broker, ETHERCATTLE_CLUSTER=cluster, ETHERCATTLE_SECRET=secret,
        ETHERCATTLE_DATADIR=str(datadir),
    )
    env.update({f"ETHERCATTLE_{key.upper()}": value for key, value in extra.items()})
    return env


def _secret(datadir: Path) -> str:
    """One secret per local installation, kept beside the data so restarts agree."""
    path = datadir / "secret"
    if not path.exists():
        datadir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _spawn(name: str, args: list[str], env: dict[str, str], log: Path) -> Child:
    process = subprocess.Popen(args, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    return Child(name, process, log)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            return bool(json.loads(response.read()).get("ready"))
    except OSError:
        return False


def run_local(datadir: Path, broker_port: int, rpc_port: int, replicas: int, block_time: float, master_port: int | None = None,
              fork: str = "osaka", follow: tuple[str, Path, str] | None = None, lb_port: int | None = None,
              clusters: int = 1) -> int:
    """Run everything until Ctrl-C; ``follow`` = (upstream URL, genesis.json, its HTTP URL) makes the masters
    follow that node instead of mining a ``fork`` dev chain each (and the emitters forward transactions to its HTTP URL);
    HAProxy on ``lb_port`` (default: after the last replica's port) is the one URL of every cluster."""
    datadir = datadir.resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    secret = _secret(datadir)
    bin_dir = Path(sys.executable).parent
    brokers: list[Child] = []
    children: list[Child] = []
    masters: list[Child] = []
    balancer: HAProxy | None = None
    planned = plan_clusters(datadir, clusters, replicas, broker_port, rpc_port, master_port or rpc_port - 1)
    replica_ports = [port for cluster in planned for port in cluster.replica_ports]
    lb_port = lb_port or replica_ports[-1] + 1
    problem = port_problem(planned, lb_port)
    if problem is not None:
        print(f"ethercattle up: {problem}; choose other ports with --broker-port, --master-port, --rpc-port "
              f"or --lb-port", file=sys.stderr)
        return 1
    # The local broker keeps its log in memory: start from empty databases every time.
    for cluster in planned:
        cluster.datadir.mkdir(parents=True, exist_ok=True)
        for stale in [cluster.datadir / "master", *(cluster.datadir / f"replica-{i}" for i in range(replicas))]:
            shutil.rmtree(stale, ignore_errors=True)
    with ExitStack() as running_brokers:  # the brokers stop last, once every process using them has
        try:
            urls = []
            for cluster in planned:  # every cluster's master starts at once; each cluster's replicas once its master answers
                broker = running_brokers.enter_context(LocalBroker(cluster.broker_port, log_path=cluster.datadir / "broker.log"))
                assert broker.process is not None
                brokers.append(Child(cluster.label + "broker", broker.process, cluster.datadir / "broker.log"))
                masters.append(_start_master(cluster, broker.url, secret, block_time, fork, follow))
                children.append(masters[-1])
                urls.append(broker.url)
            for cluster, url, master in zip(planned, urls, masters):
                try:
                    wait_for_port(cluster.master_port, MASTER_START, server=master.process)
                except TimeoutError:
                    print(death_notice(master) if master.process.poll() is not None
                          else f"ethercattle: {master.name} did not answer on port {cluster.master_port} within "
                               f"{MASTER_START} s; see {master.log}. Stopping everything.", file=sys.stderr)
                    return 1
                children.extend(_start_replicas(cluster, planned, url, secret, bin_dir, follow))
            deadline = time.monotonic() + 120
            while not all(_ready(port) for port in replica_ports):
                dead = next((child for child in [*brokers, *children] if child.process.poll() is not None), None)
                if dead is not None or time.monotonic() > deadline:
                    print(death_notice(dead) if dead else f"ethercattle: the replicas were not ready within 120 s; see the logs in {datadir}",
                          file=sys.stderr)
                    return 1
                time.sleep(0.5)
            for cluster in planned:
                _print_cluster(cluster, follow)
            balancer = start_balancer(datadir, lb_port, {cluster.server(i): port for cluster in planned
                                                         for i, port in enumerate(cluster.replica_ports)})
            if balancer is None:
                print("cluster       no haproxy installed (apt-get install haproxy): use each replica's URL")
            else:
                over = f"{len(replica_ports)} replica(s)" + ("" if clusters == 1 else f" of {clusters} clusters")
                print(f"cluster RPC   http://127.0.0.1:{lb_port}/   WebSocket ws://127.0.0.1:{lb_port}/  "
                      f"(HAProxy over {over} that /readyz says are ready)")
            print(f"logs          {datadir}/{'' if clusters == 1 else '*/'}*.log     Ctrl-C stops everything", flush=True)
            dead = wait_for_stop_or_exit([*brokers, *children])
            if dead is None:
                return 0
            print(death_notice(dead), file=sys.stderr, flush=True)
            return 1
        finally:
            if balancer is not None:
                balancer.stop()
            for child in reversed(children):
                if child.process.poll() is None:
                    os.killpg(child.process.pid, signal.SIGTERM)
            for child in children:
                try:
                    child.process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(child.process.pid, signal.SIGKILL)


MASTER_START = 60
"""Seconds a master may take to answer on its RPC port."""


def _start_master(cluster: LocalCluster, broker: str, secret: str, block_time: float, fork: str,
                  follow: tuple[str, Path, str] | None) -> Child:
    source = (["--dev", "--block-time", str(block_time), "--fork", fork] if follow is None
              else ["--follow", follow[0], "--genesis", str(follow[1].resolve())])
    return _spawn(cluster.label + "master", [sys.executable, "-m", "pipeline", "master", *source,
                                             "--rpc-port", str(cluster.master_port)],
                  _env(cluster.name, broker, cluster.datadir / "master", secret), cluster.datadir / "master.log")


def _start_replicas(cluster: LocalCluster, planned: list[LocalCluster], broker: str, secret: str, bin_dir: Path,
                    follow: tuple[str, Path, str] | None) -> list[Child]:
    """``cluster``'s replicas (started once its master answers), each with the emitter and the other clusters as status peers."""
    emit_target = f"http://127.0.0.1:{cluster.master_port}" if follow is None else follow[2]
    peers = status_peers(cluster, planned)
    started = []
    for index, port in enumerate(cluster.replica_ports):
        env = _env(cluster.name, broker, cluster.datadir / f"replica-{index}", secret, replica_id=f"replica-{index}",
                   emit_targets=emit_target, **({"status_peers": peers} if peers else {}))
        started.append(_spawn(
            f"{cluster.label}replica-{index}",
            [str(bin_dir / "faust"), "-L", "uvloop", "-A", "pipeline", "worker", "--web-port", str(port),
             "--web-host", "127.0.0.1", "--web-bind", "127.0.0.1"],
            env, cluster.datadir / f"replica-{index}.log",
        ))
    return started


def _print_cluster(cluster: LocalCluster, follow: tuple[str, Path, str] | None) -> None:
    label, width = cluster.label, 13 + len(cluster.label)
    print(f"{label + 'broker':<{width}} kafka://127.0.0.1:{cluster.broker_port}  (memory: the log is lost when it stops)")
    chain = "dev chain 1337, funded accounts: see README" if follow is None else f"following {follow[0]}"
    print(f"{label + 'master RPC':<{width}} http://127.0.0.1:{cluster.master_port}  ({chain})")
    for index, port in enumerate(cluster.replica_ports):
        print(f"{label + f'replica-{index}':<{width}} RPC http://127.0.0.1:{port}/   status http://127.0.0.1:{port}/status")
