"""Everything on one machine: broker, dev master, replicas (with the emitter), until Ctrl-C.

This is what ``deploy/dev.sh up`` (``ethercattle up``) runs. Each process logs
to DATADIR/<name>.log; the master's RPC, each replica's RPC and status page are
printed once the replicas are ready. A child that exits after that is reported
and everything stops (``deploy.supervise``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from deploy.balancer import start_balancer
from deploy.haproxy import HAProxy
from deploy.localbroker import LocalBroker, wait_for_port
from deploy.supervise import Child, death_notice, wait_for_stop_or_exit

CLUSTER = "local"


def _env(broker: str, datadir: Path, secret: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ETHERCATTLE_BROKER=broker, ETHERCATTLE_CLUSTER=CLUSTER, ETHERCATTLE_SECRET=secret,
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


def _spawn(name: str, args: list[str], env: dict[str, str], datadir: Path) -> Child:
    log = datadir / f"{name}.log"
    process = subprocess.Popen(args, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    return Child(name, process, log)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            return bool(json.loads(response.read()).get("ready"))
    except OSError:
        return False


def run_local(datadir: Path, broker_port: int, rpc_port: int, replicas: int, block_time: float, master_port: int | None = None,
              fork: str = "osaka", follow: tuple[str, Path, str] | None = None, lb_port: int | None = None) -> int:
    """Run everything until Ctrl-C; ``follow`` = (upstream URL, genesis.json, its HTTP URL) makes the master
    follow that node instead of mining a ``fork`` dev chain (and the emitters forward transactions to its HTTP URL);
    HAProxy on ``lb_port`` (default: after the last replica's port) is the cluster's one URL."""
    datadir = datadir.resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    secret = _secret(datadir)
    bin_dir = Path(sys.executable).parent
    children: list[Child] = []
    balancer: HAProxy | None = None
    master_port = master_port or rpc_port - 1
    lb_port = lb_port or rpc_port + replicas
    # The local broker keeps its log in memory: start from empty databases every time.
    for stale in [datadir / "master", *(datadir / f"replica-{i}" for i in range(replicas))]:
        shutil.rmtree(stale, ignore_errors=True)
    with LocalBroker(broker_port, log_path=datadir / "broker.log") as broker:
        try:
            master_env = _env(broker.url, datadir / "master", secret)
            source = (["--dev", "--block-time", str(block_time), "--fork", fork] if follow is None
                      else ["--follow", follow[0], "--genesis", str(follow[1].resolve())])
            children.append(_spawn(
                "master", [sys.executable, "-m", "pipeline", "master", *source, "--rpc-port", str(master_port)], master_env, datadir,
            ))
            emit_target = f"http://127.0.0.1:{master_port}" if follow is None else follow[2]
            wait_for_port(master_port, 60)
            for index in range(replicas):
                port = rpc_port + index
                env = _env(broker.url, datadir / f"replica-{index}", secret, replica_id=f"replica-{index}",
                           emit_targets=emit_target)
                children.append(_spawn(
                    f"replica-{index}",
                    [str(bin_dir / "faust"), "-L", "uvloop", "-A", "pipeline", "worker", "--web-port", str(port),
                     "--web-host", "127.0.0.1", "--web-bind", "127.0.0.1"],
                    env, datadir,
                ))
            deadline = time.monotonic() + 120
            while not all(_ready(rpc_port + i) for i in range(replicas)):
                dead = next((child for child in children if child.process.poll() is not None), None)
                if dead is not None or time.monotonic() > deadline:
                    print(death_notice(dead) if dead else f"ethercattle: the replicas were not ready within 120 s; see the logs in {datadir}",
                          file=sys.stderr)
                    return 1
                time.sleep(0.5)
            print(f"broker        {broker.url}  (memory: the log is lost when it stops)")
            chain = "dev chain 1337, funded accounts: see README" if follow is None else f"following {follow[0]}"
            print(f"master RPC    http://127.0.0.1:{master_port}  ({chain})")
            for index in range(replicas):
                port = rpc_port + index
                print(f"replica-{index}     RPC http://127.0.0.1:{port}/   status http://127.0.0.1:{port}/status")
            balancer = start_balancer(datadir, lb_port, [rpc_port + i for i in range(replicas)])
            if balancer is None:
                print("cluster       no haproxy installed (apt-get install haproxy): use each replica's URL")
            else:
                print(f"cluster RPC   http://127.0.0.1:{lb_port}/   WebSocket ws://127.0.0.1:{lb_port}/  "
                      f"(HAProxy over {replicas} replica(s) that /readyz says are ready)")
            print(f"logs          {datadir}/*.log     Ctrl-C stops everything", flush=True)
            assert broker.process is not None
            dead = wait_for_stop_or_exit([Child("broker", broker.process, datadir / "broker.log"), *children])
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
