"""Real processes for the end-to-end suites: masters and replica workers on a real broker.

Every test names its own cluster, so tests share one broker without sharing topics.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from deploy.localbroker import free_port
from storage.keys import is_bookkeeping
from storage.leveldb import LevelDB

BIN = Path(sys.executable).parent
SHARED = Path(__file__).resolve().parents[3] / "shared"
COMPAT = SHARED / "rpc-compat" / "prague-2025-02"
SECRET = "integration-test-secret-0123"


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05,
             explain: Callable[[], Any] | None = None) -> Any:
    """Poll ``condition`` until it is truthy; on timeout, say what was awaited and (``explain``) what was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    seen = "" if explain is None else f"; last seen: {explain()}"
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}{seen}")


def get_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, None


def post_json(url: str, payload: Any, timeout: float = 10.0) -> Any:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


@dataclass
class Cluster:
    """One cluster's settings on the shared broker, and the processes started for it."""

    broker_url: str
    root: Path
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, datadir: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETHERCATTLE_")}
        env.update(
            ETHERCATTLE_BROKER=self.broker_url,
            ETHERCATTLE_CLUSTER=self.name,
            ETHERCATTLE_SECRET=SECRET,
            ETHERCATTLE_DATADIR=str(datadir),
            ETHERCATTLE_HEARTBEAT_INTERVAL="0.5",
        )
        env.update({f"ETHERCATTLE_{k.upper()}": str(v) for k, v in extra.items()})
        return env

    @property
    def master_dir(self) -> Path:
        return self.root / "master"

    def replica_dir(self, replica_id: str) -> Path:
        return self.root / replica_id

    def ethercattle(self, *args: str, datadir: Path | None = None, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pipeline", *args], env=self.env(datadir or self.master_dir, **extra),
            capture_output=True, text=True, timeout=timeout,
        )

    def spawn(self, args: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{log_name}.log", "ab")
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def import_compat_chain(self, suite: Path = COMPAT, **extra: Any) -> subprocess.CompletedProcess[str]:
        done = self.ethercattle("import", "--genesis", str(suite / "genesis.json"), "--chain", str(suite / "chain.rlp"), **extra)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def start_dev_master(self, rpc_port: int, block_time: float = 0.0, dev: bool = True, **extra: str) -> subprocess.Popen[bytes]:
        """``ethercattle master`` on ``rpc_port``: a dev chain, or (``dev=False``) serving an imported one."""
        args = [sys.executable, "-m", "pipeline", "master", "--rpc-port", str(rpc_port), "--block-time", str(block_time)]
        process = self.spawn(args + (["--dev"] if dev else []), self.env(self.master_dir, **extra), "master")
        wait_for(lambda: get_json(f"http://127.0.0.1:{rpc_port}/")[0] != 0 or process.poll() is not None, 30, "the master's RPC")
        assert process.poll() is None, self.log("master")
        return process

    def start_master(
        self, block_time: float = 0.0, backlog: int = 0, padding: int = 0, timeout: float = 60, **extra: str
    ) -> subprocess.Popen[bytes]:
        """A master (tests.integration.master_proc): heartbeats, and an empty dev block every ``block_time`` s.

        ``backlog`` blocks (each followed by ``padding`` 512-byte records) are mined and
        acknowledged before this returns.
        """
        log_name = "master"
        marker = len(self.log(log_name))
        args = [sys.executable, "-m", "tests.integration.master_proc", "--block-time", str(block_time),
                "--backlog", str(backlog), "--padding", str(padding)]
        process = self.spawn(args, self.env(self.master_dir, **extra), log_name)
        wait_for(lambda: "master ready" in self.log(log_name)[marker:] or process.poll() is not None, timeout, "the master to start")
        assert process.poll() is None, self.log(log_name)[marker:]
        return process

    def spawn_replica(self, replica_id: str, **extra: str) -> "Replica":
        """A replica worker, just started."""
        port = free_port()
        env = self.env(self.replica_dir(replica_id), replica_id=replica_id, **extra)
        args = [str(BIN / "faust"), "-L", "uvloop", "-A", "pipeline", "worker", "--web-port", str(port), "--web-host", "127.0.0.1",
                "-l", "info"]
        return Replica(self, replica_id, port, self.spawn(args, env, replica_id))

    def start_replica(self, replica_id: str, **extra: str) -> "Replica":
        """A replica worker whose web server answers (or that exited)."""
        (replica,) = self.start_replicas(replica_id, **extra)
        return replica

    def start_replicas(self, *replica_ids: str, **extra: str) -> list["Replica"]:
        """Replica workers started together, each with its web server answering (or exited).

        A worker spends most of its start-up importing and then waiting for its group join:
        started together, their waits overlap instead of adding up.
        """
        replicas = [self.spawn_replica(replica_id, **extra) for replica_id in replica_ids]
        for replica in replicas:
            replica.wait_serving()
        return replicas

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        """End every process still running, all at once and without a graceful stop.

        Tests stop gracefully what they check after a stop; what is left has been asserted on,
        and stopping each Faust worker in turn (about 2 s each) only lengthened every test.
        """
        stop_together(self.processes, signal.SIGKILL)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    (code,) = stop_together([process], sig, timeout)
    return code


def stop_together(processes: list[subprocess.Popen[bytes]], sig: int = signal.SIGTERM, timeout: float = 15) -> list[int]:
    """Signal every running process's group, then wait for each (killed after ``timeout`` s): the
    stops overlap, where a Faust worker alone takes about 2 s. Returns their exit codes."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return [process.returncode for process in processes]


@dataclass
class Replica:
    cluster: Cluster
    replica_id: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any] | None:
        status, body = get_json(f"{self.url}/healthz")
        return body if status else None

    def readiness(self) -> tuple[int, dict[str, Any] | None]:
        return get_json(f"{self.url}/readyz")

    def wait_serving(self, timeout: float = 60) -> None:
        """Wait until the web server answers, or the worker exited."""
        wait_for(lambda: self.health() is not None or self.process.poll() is not None, timeout, f"replica {self.replica_id} web server")

    def wait_sequence(self, sequence: int, timeout: float = 60) -> dict[str, Any]:
        seen: list[dict[str, Any] | None] = [None]

        def reached() -> dict[str, Any] | None:
            assert self.process.poll() is None, f"replica {self.replica_id} exited:\n{self.log()[-3000:]}"
            body = seen[0] = self.health()
            return body if body and body["sequence"] >= sequence else None

        return wait_for(reached, timeout, f"replica {self.replica_id} to apply record {sequence}",
                        explain=lambda: f"/healthz {seen[0] or 'did not answer'}; /readyz {self.readiness()}; "
                                        f"log tail:\n{self.log()[-2000:]}")

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        return wait_for(lambda: (lambda r: r[1] if r[0] == 200 else None)(self.readiness()), timeout,
                        f"replica {self.replica_id} ready", explain=lambda: (self.readiness(), self.log()[-2000:]))

    def rpc(self, method: str, *params: Any) -> Any:
        return post_json(self.url + "/", {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop(self.process, sig)

    def log(self) -> str:
        return self.cluster.log(self.replica_id)


def metrics(replica: Replica) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """/metrics parsed by prometheus_client's parser: {sample name: {sorted labels: value}}."""
    with urllib.request.urlopen(replica.url + "/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word is host-endian
                found.add(str(ipaddress.ip_address(words)))
    return found


async def produce_raw(broker_url: str, topic: str, value: bytes) -> None:
    """One record written straight to partition 0 of ``topic``, as anyone who reaches the broker can."""
    producer = AIOKafkaProducer(bootstrap_servers=broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


def master_sequence(datadir: Path) -> int:
    from master.journal import last_sequence

    with LevelDB(datadir / "chaindb") as db:
        return last_sequence(db)


def chain_pairs(datadir: Path) -> dict[bytes, bytes]:
    """Every key/value pair of a node's chain database outside the bookkeeping keys."""
    with LevelDB(datadir / "chaindb", create=False) as db:
        return {key: value for key, value in db.iterate() if not is_bookkeeping(key)}


def assert_identical(master: Path, replica: Path) -> int:
    expected, actual = chain_pairs(master), chain_pairs(replica)
    missing = expected.keys() - actual.keys()
    extra = actual.keys() - expected.keys()
    differing = [key for key in expected.keys() & actual.keys() if expected[key] != actual[key]]
    assert not (missing or extra or differing), (
        f"replica differs from master: {len(missing)} missing, {len(extra)} extra, {len(differing)} differing keys"
    )
    return len(expected)


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target``; ``cut()`` is a broker outage.

    ``cut()`` closes every connection and stops listening (clients get
    "connection refused", as from a stopped broker), ``restore()`` listens
    again on the same port: the broker behind it kept its log, so this is an
    outage without loss, which a restarted local broker (memory storage) can't give.
    """

    def __init__(self, target: int, port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut while this one was accepted: it must not outlive the cut
                    client.close()
                    upstream.close()
                    return
                self._connections += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            connections, self._connections = self._connections, []
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()
