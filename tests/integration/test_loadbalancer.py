"""Replicas as cattle behind a real HAProxy: shared filters through it, a replica killed under load,
a new one that gets traffic only once ready."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from deploy.haproxy import Backend, HAProxy, render
from deploy.localbroker import LocalBroker, free_port
from tests.contracts import STORED_TOPIC
from tests.integration.harness import BIN, Cluster, Replica, post_json, wait_for
from tests.integration.test_filters import assert_consecutive_from, deploy_store, master_rpc, send

pytestmark = pytest.mark.broker

INTER, FALL, RISE = "500ms", 2, 2


def start_replica_on(cluster: Cluster, replica_id: str, port: int, wait: bool = True, **extra: str) -> Replica:
    """A replica worker on a chosen port (the load balancer's config names it before it exists)."""
    env = cluster.env(cluster.replica_dir(replica_id), replica_id=replica_id, **extra)
    args = [str(BIN / "faust"), "-L", "uvloop", "-A", "pipeline", "worker", "--web-port", str(port), "--web-host", "127.0.0.1", "-l", "info"]
    replica = Replica(cluster, replica_id, port, cluster.spawn(args, env, replica_id))
    if wait:
        replica.wait_serving()
    return replica


def start_haproxy(root: Path, ports: dict[str, int]) -> HAProxy:
    port, stats_port = free_port(), free_port()
    config = root / "haproxy.cfg"
    config.write_text(render([Backend(name, f"127.0.0.1:{p}") for name, p in ports.items()],
                             bind=f"127.0.0.1:{port}", stats_bind=f"127.0.0.1:{stats_port}",
                             inter=INTER, fall=FALL, rise=RISE))
    return HAProxy(config, port, stats_port, root / "haproxy.log").start()


class Balanced:
    """A master, replicas on fixed ports and HAProxy in front of them."""

    def __init__(self, cluster: Cluster, names: tuple[str, ...] = ("ra", "rb"), spare: tuple[str, ...] = ()) -> None:
        self.cluster = cluster
        self.master_port = free_port()
        cluster.start_dev_master(self.master_port, block_time=0.25)
        self.ports = {name: free_port() for name in names + spare}
        self.replicas = {name: start_replica_on(cluster, name, self.ports[name], wait=False) for name in names}  # start-ups overlap
        for replica in self.replicas.values():
            replica.wait_serving()
            replica.wait_ready()
        self.haproxy = start_haproxy(cluster.root, self.ports)
        wait_for(lambda: all(self.haproxy.stats()[n]["status"] == "UP" for n in names), 10, "HAProxy to see the replicas UP")

    def rpc(self, method: str, *params: Any) -> Any:
        return post_json(self.haproxy.url + "/", {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})

    def result(self, method: str, *params: Any) -> Any:
        answer = self.rpc(method, *params)
        assert "error" not in answer, (method, answer)
        return answer["result"]


@pytest.fixture(scope="module")
def balanced(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Balanced]:
    """One balanced cluster for the tests that leave it as they found it (each deploys and sends from
    a dev account of its own): a master, two replicas and HAProxy take 10-20 s to start."""
    cluster = Cluster(broker.url, tmp_path_factory.mktemp("balanced"))
    try:
        made = Balanced(cluster)
        try:
            yield made
        finally:
            made.haproxy.stop()
    finally:
        cluster.stop_all()


class Load:
    """Clients hammering eth_blockNumber through HAProxy; counts answers and failures."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.ok = 0
        self.errors: list[tuple[float, str]] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(5)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                answer = post_json(self.url + "/", {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}, timeout=5)
                if "result" in answer:
                    self.ok += 1
                else:
                    self.errors.append((time.monotonic(), str(answer.get("error"))))
            except Exception as error:  # noqa: BLE001 - every failure a client would see counts
                self.errors.append((time.monotonic(), repr(error)[:120]))


# Placed before the tests on the shared `balanced` cluster: its timings are taken while no other cluster runs.
def test_cattle_loop_killed_replica_is_taken_out_and_new_one_joins_only_when_ready(cluster: Cluster) -> None:
    balanced = Balanced(cluster, spare=("rc",))
    try:
        haproxy = balanced.haproxy
        # HAProxy 2.6 starts every server UP and lets checks take it out (3.1+: `init-state down`):
        # the configured, not yet started replica is DOWN after FALL refused checks.
        wait_for(lambda: haproxy.stats()["rc"]["status"].startswith("DOWN"), 5, "HAProxy to mark rc DOWN")
        with Load(haproxy.url) as load:
            time.sleep(1.5)
            ok_before = load.ok
            killed_at = time.monotonic()
            balanced.replicas["ra"].stop(signal.SIGKILL)
            down = wait_for(lambda: haproxy.stats()["ra"]["status"].startswith("DOWN"), 10, "HAProxy to take ra out")
            taken_out = time.monotonic() - killed_at
            time.sleep(1.0)
            errors_after_kill = list(load.errors)

            # A new replica from nothing: it gets no traffic until its /readyz says ready.
            rc = start_replica_on(cluster, "rc", balanced.ports["rc"], wait=False)
            statuses: list[tuple[int, str, int]] = []

            def joined() -> bool:
                code, _ = rc.readiness()
                row = haproxy.stats()["rc"]
                statuses.append((code, row["status"], int(row["stot"])))
                return row["status"] == "UP" and int(row["stot"]) > 0

            wait_for(joined, 30, "rc to join the rotation", interval=0.1)
            time.sleep(1.0)
            total_ok = load.ok
        assert down
        sessions_while_unready = [stot for code, _, stot in statuses if code != 200]
        print(f"\nra killed: HAProxy marked it DOWN after {taken_out:.2f}s (inter {INTER} fall {FALL}); "
              f"client errors: {len(errors_after_kill)} of {total_ok + len(load.errors)} requests "
              f"({ok_before} answered before the kill); "
              f"rc: {len(statuses)} samples, sessions while unready {max(sessions_while_unready, default=0)}, "
              f"UP with {statuses[-1][2]} sessions")
        for when, error in errors_after_kill[:5]:
            print(f"  error {when - killed_at:+.2f}s: {error}")
        assert taken_out < 0.5 * FALL + 1.5  # within the health-check interval (plus a check's timeout)
        assert len(load.errors) <= 8  # only requests in flight on ra when it died
        assert all(stot == 0 for stot in sessions_while_unready)  # no traffic before ready
        assert any(code != 200 for code, _, _ in statuses)  # it was observed unready first
        assert int(haproxy.stats()["rc"]["stot"]) > 0  # and it serves now
    finally:
        balanced.haproxy.stop()


def test_filters_through_haproxy_see_every_block_and_log_once(balanced: Balanced) -> None:
    port = balanced.master_port
    contract, key = deploy_store(port, account=2)  # an account of its own: the cluster is shared
    wait_for(lambda: all(r.rpc("eth_getCode", contract, "latest").get("result", "0x") != "0x" for r in balanced.replicas.values()),
             10, "the contract on both replicas")
    before = min(int(r.rpc("eth_blockNumber")["result"], 16) for r in balanced.replicas.values())
    log_filter = balanced.result("eth_newFilter", {"address": contract, "topics": ["0x" + STORED_TOPIC.hex()]})
    block_filter = balanced.result("eth_newBlockFilter")
    installed_at = int(master_rpc(port, "eth_blockNumber"), 16)
    sessions = {name: int(row["stot"]) for name, row in balanced.haproxy.stats().items()}
    values = [i.to_bytes(32, "big") for i in range(1, 16)]
    blocks: list[str] = []
    logs: list[dict[str, Any]] = []
    for nonce, value in enumerate(values, start=1):
        send(port, key, nonce, contract, value)
        blocks += balanced.result("eth_getFilterChanges", block_filter)
        logs += balanced.result("eth_getFilterChanges", log_filter)
    head = int(master_rpc(port, "eth_blockNumber"), 16)

    def drained() -> bool:
        nonlocal blocks, logs
        blocks += balanced.result("eth_getFilterChanges", block_filter)
        logs += balanced.result("eth_getFilterChanges", log_filter)
        return len(logs) >= len(values) and len(blocks) >= head - installed_at

    wait_for(drained, 15, "every event and block through HAProxy")
    after = {name: int(row["stot"]) for name, row in balanced.haproxy.stats().items()}
    served = {name: after[name] - sessions[name] for name in after}
    print(f"\nrequests per replica through HAProxy: {served}")
    assert all(count > 5 for count in served.values())  # round robin: both replicas answered polls
    assert [bytes.fromhex(log["data"][2:]) for log in logs] == values
    assert_consecutive_from(port, blocks, before, installed_at)


def test_websocket_subscriptions_through_haproxy_get_each_head_and_log_once(balanced: Balanced) -> None:
    import asyncio

    import aiohttp

    port = balanced.master_port
    contract, key = deploy_store(port, account=3)  # an account of its own: the cluster is shared
    wait_for(lambda: all(r.rpc("eth_getCode", contract, "latest").get("result", "0x") != "0x" for r in balanced.replicas.values()),
             10, "the contract on both replicas")
    values = [i.to_bytes(32, "big") for i in range(1, 11)]

    async def client() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
        async with aiohttp.ClientSession() as session, session.ws_connect(balanced.haproxy.url + "/") as ws:
            async def call(request_id: int, method: str, *params: Any) -> Any:
                await ws.send_json({"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)})
                while True:
                    message = await ws.receive_json(timeout=5)
                    if message.get("id") == request_id:
                        assert "error" not in message, message
                        return message["result"]
                    notes.append(message)

            notes: list[dict[str, Any]] = []
            heads_id = await call(1, "eth_subscribe", "newHeads")
            logs_id = await call(2, "eth_subscribe", "logs", {"address": contract, "topics": ["0x" + STORED_TOPIC.hex()]})
            start = int(await call(3, "eth_blockNumber"), 16)
            loop = asyncio.get_running_loop()
            for nonce, value in enumerate(values, start=1):
                await loop.run_in_executor(None, send, port, key, nonce, contract, value)
            end = int(await loop.run_in_executor(None, master_rpc, port, "eth_blockNumber"), 16)
            deadline = loop.time() + 10
            while loop.time() < deadline:
                heads = [n for n in notes if n["params"]["subscription"] == heads_id]
                logs = [n for n in notes if n["params"]["subscription"] == logs_id]
                if heads and int(heads[-1]["params"]["result"]["number"], 16) >= end and len(logs) >= len(values):
                    break
                try:
                    notes.append(await ws.receive_json(timeout=1))
                except asyncio.TimeoutError:
                    pass
            assert await call(4, "eth_unsubscribe", heads_id) is True
            assert await call(5, "eth_unsubscribe", logs_id) is True
            after = len(notes)
            await loop.run_in_executor(None, send, port, key, len(values) + 1, contract, b"\x01" * 32)
            try:
                while True:
                    notes.append(await ws.receive_json(timeout=1.5))
            except asyncio.TimeoutError:
                pass
            return ([n["params"]["result"] for n in notes[:after] if n["params"]["subscription"] == heads_id],
                    [n["params"]["result"] for n in notes[:after] if n["params"]["subscription"] == logs_id],
                    start, len(notes) - after)

    heads, logs, start, late = asyncio.run(client())
    numbers = [int(h["number"], 16) for h in heads]
    print(f"\nWebSocket through HAProxy: {len(heads)} heads ({numbers[0]}..{numbers[-1]}), {len(logs)} logs")
    assert numbers == list(range(start + 1, start + 1 + len(numbers)))  # each head once, in order
    assert [h["hash"] for h in heads] == [master_rpc(balanced.master_port, "eth_getBlockByNumber", hex(n), False)["hash"] for n in numbers]
    assert [bytes.fromhex(log["data"][2:]) for log in logs] == values and not any(log["removed"] for log in logs)
    assert late == 0  # unsubscribed: nothing more


ROOT = Path(__file__).resolve().parents[2]
ETHERS_DIR = ROOT / ".bench" / "cache" / "ethers"
STORED_ABI = [{"type": "event", "name": "Stored", "anonymous": False,
               "inputs": [{"name": "value", "type": "bytes32", "indexed": False}]}]


def ethers_installed() -> Path:
    """ethers v6 from npm into a gitignored cache (installed by the suite on first use)."""
    if not (ETHERS_DIR / "node_modules" / "ethers").is_dir():
        ETHERS_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "ethers@6"], cwd=ETHERS_DIR,
                       check=True, timeout=300)
    return ETHERS_DIR


def test_ethers_contract_on_and_web3_event_filter_through_haproxy_get_every_event_once(balanced: Balanced) -> None:
    from web3 import Web3

    ethers_dir = ethers_installed()
    port = balanced.master_port
    contract, key = deploy_store(port, account=4)  # an account of its own: the cluster is shared
    wait_for(lambda: all(r.rpc("eth_getCode", contract, "latest").get("result", "0x") != "0x" for r in balanced.replicas.values()),
             10, "the contract on both replicas")
    values = [i.to_bytes(32, "big") for i in range(1, 11)]
    node = subprocess.Popen(["node", str(Path(__file__).with_name("ethers_events.cjs")), str(ethers_dir), balanced.haproxy.url,
                             contract, str(len(values)), "25000"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert node.stdout is not None
        first = node.stdout.readline().strip()
        assert first == "READY", first + node.stdout.read()
        w3 = Web3(Web3.HTTPProvider(balanced.haproxy.url + "/"))
        event_filter = w3.eth.contract(address=contract, abi=STORED_ABI).events.Stored.create_filter(from_block="latest")
        from_web3: list[bytes] = []
        for nonce, value in enumerate(values, start=1):
            send(port, key, nonce, contract, value)
            from_web3 += [bytes(entry["args"]["value"]) for entry in event_filter.get_new_entries()]
        wait_for(lambda: from_web3.extend(bytes(e["args"]["value"]) for e in event_filter.get_new_entries())
                 or len(from_web3) >= len(values), 15, "web3.py's filter to see every event")
        out, _ = node.communicate(timeout=30)
    finally:
        if node.poll() is None:
            node.kill()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    from_ethers = [bytes.fromhex(json.loads(line)["value"][2:]) for line in lines]
    print(f"\nethers v6 contract.on: {len(from_ethers)} events; web3.py filter: {len(from_web3)} events")
    assert node.returncode == 0, out
    assert from_ethers == values  # every event, once, in order
    assert from_web3 == values

    last_tx = json.loads(lines[-1])["tx"]
    traced = subprocess.run(["node", str(Path(__file__).with_name("ethers_trace.cjs")), str(ethers_dir), balanced.haproxy.url,
                             last_tx], capture_output=True, text=True, timeout=30)
    assert traced.returncode == 0, traced.stdout + traced.stderr
    trace = json.loads(traced.stdout)
    assert trace == w3.provider.make_request("debug_traceTransaction", [last_tx, {"tracer": "callTracer", "tracerConfig": {"withLog": True}}])["result"]
    assert (trace["to"], trace["logs"][0]["data"]) == (contract.lower(), "0x" + values[-1].hex())
