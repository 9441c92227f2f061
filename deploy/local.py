"""Everything on one machine: broker, dev master, replicas (with the emitter), until Ctrl-C.

This is what ``deploy/dev.sh up`` (``ethercattle up``) runs. Each process logs
to DATADIR/<name>.log; the master's RPC, each replica's RPC and status page are
printed once the replicas are ready.
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


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            return bool(json.loads(response.read()).get("ready"))
    except OSError:
        return False


def run_local(datadir: Path, broker_port: int, rpc_port: int, replicas: int, block_time: float, master_port: int | None = None,
              lb_port: int | None = None) -> int:
    datadir = datadir.resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    secret = _secret(datadir)
    bin_dir = Path(sys.executable).parent
    processes: list[subprocess.Popen[bytes]] = []
    balancer: HAProxy | None = None
    master_port = master_port or rpc_port - 1
    lb_port = lb_port or rpc_port + replicas
    # The local broker keeps its log in memory: start from empty databases every time.
    for stale in [datadir / "master", *(datadir / f"replica-{i}" for i in range(replicas))]:
        shutil.rmtree(stale, ignore_errors=True)
    with LocalBroker(broker_port, log_path=datadir / "broker.log") as broker:
        try:
            master_env = _env(broker.url, datadir / "master", secret)
            processes.append(_spawn(
                [sys.executable, "-m", "pipeline", "master", "--dev", "--rpc-port", str(master_port), "--block-time", str(block_time)],
                master_env, datadir / "master.log",
            ))
            wait_for_port(master_port, 60)
            for index in range(replicas):
                port = rpc_port + index
                env = _env(broker.url, datadir / f"replica-{index}", secret, replica_id=f"replica-{index}",
                           emit_targets=f"http://127.0.0.1:{master_port}")
                processes.append(_spawn(
                    [str(bin_dir / "faust"), "-L", "uvloop", "-A", "pipeline", "worker", "--web-port", str(port), "--web-host", "127.0.0.1"],
                    env, datadir / f"replica-{index}.log",
                ))
            deadline = time.monotonic() + 120
            while not all(_ready(rpc_port + i) for i in range(replicas)):
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    print(f"ethercattle: a process failed to come up; see the logs in {datadir}", file=sys.stderr)
                    return 1
                time.sleep(0.5)
            print(f"broker        {broker.url}  (memory: the log is lost when it stops)")
            print(f"master RPC    http://127.0.0.1:{master_port}  (dev chain 1337, funded accounts: see README)")
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
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
            return 0
        finally:
            if balancer is not None:
                balancer.stop()
            for process in reversed(processes):
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
