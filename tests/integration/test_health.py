"""Health, readiness and status end to end: what a load balancer and an operator see.

Real processes on a real broker: masters (``tests.integration.master_proc``) and
``faust -A pipeline worker`` replicas, with short intervals (heartbeats every
0.5 s, MAX_HEARTBEAT_AGE 3 s, MAX_BROKER_SILENCE 2 s, status rows every 0.5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from broker.admin import partition_counts
from broker.autocreate import forbid_topic_auto_creation
from deploy.localbroker import LocalBroker, free_port
from cluster.record import Authenticator, Record, encode_record, encode_records
from cluster.topics import TopicNames, TopicSpec
from tests.integration.harness import (SECRET, Cluster, Replica, TcpProxy, assert_identical, get_json, master_sequence, metrics,
                                       produce_raw, stop, stop_together, wait_for)
from tests.integration.test_transactions import CountingTarget, nonce, signed, tx_hash_of, wait_receipt

pytestmark = pytest.mark.broker

HEARTBEAT_INTERVAL = 0.5  # the harness's ETHERCATTLE_HEARTBEAT_INTERVAL
MAX_HEARTBEAT_AGE = 3.0
MAX_BROKER_SILENCE = 2.0
STATUS_INTERVAL = 0.5
HEALTH = dict(max_heartbeat_age=str(MAX_HEARTBEAT_AGE), max_broker_silence=str(MAX_BROKER_SILENCE), status_interval=str(STATUS_INTERVAL))
POLL = 0.1  # how often the tests ask /readyz: part of every measured delay

Answers = dict[str, tuple[int, Any]]


# --- helpers ------------------------------------------------------------------------------------


def failed(body: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The failed checks of a /readyz body, by name."""
    return {check["name"]: check for check in (body or {}).get("checks", []) if not check["ok"]}


def watch_readiness(replicas: list[Replica], until: Callable[[Answers], bool], timeout: float, what: str,
                    interval: float = POLL) -> tuple[float, Answers]:
    """Poll every replica's /readyz until ``until(answers)`` holds; (seconds it took, the answers)."""
    started = time.monotonic()
    while True:
        answers = {replica.replica_id: replica.readiness() for replica in replicas}
        if until(answers):
            return time.monotonic() - started, answers
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}: {answers}")
        time.sleep(interval)


def all_status(status: int) -> Callable[[Answers], bool]:
    return lambda answers: all(code == status for code, _ in answers.values())


def master_ready_sequence(cluster: Cluster) -> int:
    """The sequence the master had written when it said ``master ready`` (its backlog, acknowledged)."""
    return int(re.findall(r"master ready at block \d+ sequence (\d+)", cluster.log("master"))[-1])


def stop_master_and_drain(cluster: Cluster, master: subprocess.Popen[bytes], *replicas: Replica) -> int:
    """Stop the master (it flushes its journal), then wait for every replica to apply its last record."""
    assert stop(master) == 0, cluster.log("master")[-3000:]
    last = master_sequence(cluster.master_dir)
    for replica in replicas:
        replica.wait_sequence(last)
    return last


def rpc_error(replica: Replica) -> str | None:
    """The JSON-RPC error message of a call made now; None while no RPC view is mounted at POST /."""
    request = urllib.request.Request(
        replica.url + "/", b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}', {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        if error.code in (404, 405):
            return None  # TODO(lead): drop this branch once the RPC view is mounted on the worker
        body = error.read()
    answer = json.loads(body)
    assert "error" in answer, f"a replica that is not ready answered JSON-RPC: {answer}"
    return str(answer["error"]["message"])


def status_json(replica: Replica) -> dict[str, Any]:
    code, body = get_json(replica.url + "/status.json")
    assert code == 200, (code, body)
    return body


def rows_by_replica(replica: Replica) -> dict[str, dict[str, Any]]:
    return {row["replica"]: row for row in status_json(replica)["replicas"]}


@contextlib.contextmanager
def own_broker(tmp_path: Path, proxy: TcpProxy | None = None) -> Iterator[tuple[LocalBroker, Cluster]]:
    """A broker of the test's own (outages must not touch the shared one) and a cluster on it.

    The cluster's processes stop before the broker does: a worker whose broker is gone takes long to stop.
    """
    port = proxy.target if proxy else free_port()
    with LocalBroker(port=port, advertised_port=proxy.port if proxy else None, log_path=tmp_path / "broker.log") as broker:
        cluster = Cluster(proxy.url if proxy else broker.url, tmp_path)
        if proxy:
            proxy.start()
        try:
            yield broker, cluster
        finally:
            if proxy and proxy.is_cut:
                proxy.restore()  # let the processes stop cleanly
            cluster.stop_all()
            if proxy:
                proxy.stop()


# --- readiness ----------------------------------------------------------------------------------


def test_new_replica_with_a_large_backlog_is_not_ready_until_caught_up(cluster: Cluster) -> None:
    master = cluster.start_master(block_time=1.0, backlog=150, padding=100, timeout=180, max_message_bytes="8192")
    backlog = master_ready_sequence(cluster)
    replica = cluster.start_replica("r1", apply_batch_messages="1", **HEALTH)

    seen: list[dict[str, Any]] = []
    rpc_errors: list[str] = []

    def record(answers: Answers) -> bool:
        status, body = answers["r1"]
        if body is not None:
            seen.append({"status": status, **body})
            if status == 503 and body["sequence"] < backlog and len(rpc_errors) < 3:
                error = rpc_error(replica)
                if error is not None:
                    rpc_errors.append(error)
        return status == 200

    took, answers = watch_readiness([replica], record, 120, "the new replica to turn ready", interval=0.05)
    catching_up = [body for body in seen if body["status"] == 503 and body["sequence"] < backlog]
    assert len(catching_up) >= 3, f"never saw the replica catching up ({took:.1f}s to ready)"
    assert not [body for body in seen if body["status"] == 200 and body["sequence"] < backlog], "ready before catching up"
    for body in catching_up:
        assert {"caught_up", "lag"} & failed(body).keys() and body["reason"], body
    syncing = [body["syncing"] for body in catching_up if body["syncing"]]
    assert syncing and all(s["startingBlock"] <= s["currentBlock"] <= s["highestBlock"] for s in syncing)
    assert max(s["highestBlock"] for s in syncing) >= 150, "eth_syncing's highestBlock never reached the master's head"
    assert any(s["currentBlock"] < s["highestBlock"] for s in syncing)
    assert all("not ready" in error and "caught_up" in error for error in rpc_errors), rpc_errors
    ready = answers["r1"][1]
    assert ready["sequence"] >= backlog and ready["lag"] <= 50 and ready["syncing"] is None
    print(f"\n{backlog} records: ready after {took:.1f}s, {len(catching_up)} not-ready answers while catching up; "
          f"JSON-RPC meanwhile: {rpc_errors[0] if rpc_errors else 'no RPC view mounted (TODO lead)'}")

    values = metrics(replica)
    assert values["ethercattle_ready"][()] == 1
    assert values["ethercattle_readiness_check"][(("check", "caught_up"),)] == 1
    assert values["ethercattle_applied_records_total"][()] >= backlog
    assert values["ethercattle_applied_bytes_total"][()] > 150 * 100 * 512
    assert values["ethercattle_apply_seconds_count"][()] > 0
    assert values["ethercattle_head_number"][()] >= 150
    assert values["ethercattle_master_head_number"][()] >= 150
    assert 0 <= values["ethercattle_head_age_seconds"][()] < 600
    assert values["ethercattle_lag_messages"][()] <= 50
    assert 0 <= values["ethercattle_heartbeat_age_seconds"][()] <= MAX_HEARTBEAT_AGE
    headers = (("structure", "decoded headers"), ("unit", "entries"))
    assert values["ethercattle_bounded_limit"][headers] == 4096
    assert 0 <= values["ethercattle_bounded_size"][headers] <= 4096
    stop_master_and_drain(cluster, master, replica)


def test_stopping_the_master_makes_replicas_unready_and_its_restart_ready_without_loss(cluster: Cluster) -> None:
    master = cluster.start_master(block_time=0.3)
    replicas = cluster.start_replicas("r1", "r2", **HEALTH)
    watch_readiness(replicas, all_status(200), 60, "both replicas ready")

    assert stop(master) == 0
    took, answers = watch_readiness(replicas, all_status(503), 30, "both replicas unready after the master stopped")
    limit = MAX_HEARTBEAT_AGE + HEARTBEAT_INTERVAL
    assert took <= limit + POLL + 0.3, f"unready {took:.2f}s after the master stopped (limit {limit}s)"
    for _, body in answers.values():
        assert set(failed(body)) == {"heartbeat_age"}, body["checks"]
        assert "master" in failed(body)["heartbeat_age"]["detail"] and "heartbeat_age" in body["reason"]
    print(f"\nunready {took:.2f}s after the master stopped (MAX_HEARTBEAT_AGE {MAX_HEARTBEAT_AGE}s)")

    master = cluster.start_master(block_time=0.3)
    took, _ = watch_readiness(replicas, all_status(200), 30, "both replicas ready after the master's restart")
    print(f"ready again {took:.2f}s after the master said it was running")
    time.sleep(1.5)  # a few more blocks
    stop_master_and_drain(cluster, master, *replicas)
    stop_together([replica.process for replica in replicas])
    for replica in replicas:
        assert_identical(cluster.master_dir, cluster.replica_dir(replica.replica_id))


def test_broker_outage_makes_replicas_unready_saying_why_and_they_resume(tmp_path: Path) -> None:
    proxy = TcpProxy(target=free_port())
    with own_broker(tmp_path, proxy) as (_, cluster):
        master = cluster.start_master(block_time=0.3)
        replica = cluster.start_replica("r1", **HEALTH)
        watch_readiness([replica], all_status(200), 60, "the replica ready")

        proxy.cut()
        # Another check may fail first (the lag is unknown once fetches stop); the broker check must follow.
        took, answers = watch_readiness(
            [replica], lambda found: found["r1"][0] == 503 and "broker" in failed(found["r1"][1]), 30,
            "the replica unready, naming its broker",
        )
        assert took <= MAX_BROKER_SILENCE + 1.0 + POLL, f"unready only {took:.2f}s after the broker went away"
        broker_check = failed(answers["r1"][1])["broker"]
        assert broker_check["value"] > MAX_BROKER_SILENCE and "unreachable" in broker_check["detail"]
        assert "broker" in answers["r1"][1]["reason"]
        time.sleep(3)  # a longer outage: the master keeps mining into its journal
        _, body = replica.readiness()
        assert {"broker", "heartbeat_age"} <= failed(body).keys()
        assert status_json(replica)["self"]["ready"] is False  # the status page works without a broker
        print(f"\nunready {took:.2f}s after the broker went away: {answers['r1'][1]['reason']}")

        proxy.restore()
        took, _ = watch_readiness([replica], all_status(200), 60, "the replica ready once the broker is back")
        print(f"ready {took:.2f}s after the broker came back")
        stop_master_and_drain(cluster, master, replica)
        assert "log-reset" not in replica.log()
        client_errors = [line for line in replica.log().splitlines() if "[ERROR]" in line and "node" in line]
        assert 0 < len(client_errors) <= 20, f"the Kafka client's retries flooded the log: {len(client_errors)} lines"
        replica.stop()
        assert_identical(cluster.master_dir, cluster.replica_dir("r1"))


def test_broker_restarted_empty_gets_every_topic_back_as_designed_and_the_cluster_continues_by_itself(tmp_path: Path) -> None:
    with own_broker(tmp_path) as (broker, cluster):
        master_port = free_port()
        master = cluster.start_dev_master(master_port)  # mines when a transaction arrives; heartbeats every 0.5 s
        target = CountingTarget(f"http://127.0.0.1:{master_port}/").up()
        try:
            replica = cluster.start_replica("r1", emit_targets=target.url, emit_retry_initial="0.1", emit_retry_max="0.5", **HEALTH)
            watch_readiness([replica], all_status(200), 60, "the replica ready")
            time.sleep(2)  # a log longer than what the master writes right after the restart

            broker.restart()  # same port, memory storage: the log is gone
            # Clients keep producing while the topics are gone: a transaction, a filter, and status rows every 0.5 s.
            replica.rpc("eth_sendRawTransaction", signed(0, nonce(replica, 0)))
            replica.rpc("eth_newBlockFilter")
            watch_readiness([replica], lambda a: a["r1"][0] == 503, 30, "the replica to notice")
            took, _ = watch_readiness([replica], all_status(200), 90, "the replica ready on the re-based log")
            print(f"\nready again {took:.2f}s after it noticed the lost log, with no command")
            assert "Re-based the cluster on a new log after record" in cluster.log("master")
            assert "continues from offset" in replica.log()

            raw = signed(1, nonce(replica, 1))  # a transaction sent now reaches the master through the emitter
            assert replica.rpc("eth_sendRawTransaction", raw).get("result") == tx_hash_of(raw)
            assert wait_receipt(replica, tx_hash_of(raw))["status"] == "0x1" and target.sent(tx_hash_of(raw)) == 1
            block_filter = replica.rpc("eth_newBlockFilter")["result"]
            assert isinstance(replica.rpc("eth_getFilterChanges", block_filter).get("result"), list)
            designed = TopicNames(cluster.name).specs(4, 1.0, 1.0) + TopicNames(cluster.name).emitter_specs("default")
            assert asyncio.run(partitions_on(cluster, designed)) == {spec.name: spec.partitions for spec in designed}
        finally:
            target.down()
        stop(master)  # the master command ends on SIGTERM; idle, it holds nothing unacknowledged
        replica.wait_sequence(master_sequence(cluster.master_dir))
        replica.stop()
        assert_identical(cluster.master_dir, cluster.replica_dir("r1"))


async def partitions_on(cluster: Cluster, specs: list[TopicSpec]) -> dict[str, int | None]:
    """Partitions the broker holds of each topic, asked without letting it create one."""
    forbid_topic_auto_creation()
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.broker_url.removeprefix("kafka://"))
    await admin.start()
    try:
        return await partition_counts(admin, [spec.name for spec in specs])
    finally:
        await admin.close()


def test_a_record_of_another_cluster_is_skipped_and_clusters_on_one_broker_do_not_mix(cluster: Cluster) -> None:
    other = Cluster(cluster.broker_url, cluster.root / "other")
    other.root.mkdir()
    try:
        cluster.start_master(block_time=0.3)
        other.start_master(block_time=0.3)
        mine, theirs = cluster.spawn_replica("r1", **HEALTH), other.spawn_replica("r1", **HEALTH)  # same replica id, started together
        watch_readiness([mine, theirs], all_status(200), 60, "both clusters' replicas ready")
        time.sleep(2 * STATUS_INTERVAL)
        assert set(rows_by_replica(mine)) == {"r1"} and rows_by_replica(mine)["r1"]["cluster"] == cluster.name
        assert set(rows_by_replica(theirs)) == {"r1"} and rows_by_replica(theirs)["r1"]["cluster"] == other.name

        # An authentic record of the other cluster (same secret, its key), on this cluster's log: not part of it.
        foreign = encode_records(Authenticator.for_cluster(SECRET, other.name), "master", [encode_record(Record(10**6, ((b"x", b"y"),)))])
        asyncio.run(produce_raw(cluster.broker_url, TopicNames(cluster.name).cdc, foreign))
        seen = watch_readiness([mine], lambda a: bool(status_json(mine)["self"]["last_stray"]), 30, "the replica to skip it")
        stray = status_json(mine)["self"]["last_stray"]
        assert stray["reason"] == "foreign-cluster" and other.name in stray["detail"] and cluster.name in stray["detail"]
        assert status_json(mine)["self"]["strays"] == 1 and seen[1]["r1"][0] == 200  # still ready, still applying
        before = status_json(mine)["self"]["sequence"]
        watch_readiness([mine], lambda a: a["r1"][1]["sequence"] > before, 10, "the replica to apply the master's next records")
        assert theirs.readiness()[0] == 200  # the other cluster is untouched
    finally:
        other.stop_all()


# --- the status page and the cluster table -----------------------------------------------------


def chromium(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Headless Chromium (Debian package ``chromium``) with a throwaway profile."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("Debian package chromium is missing (deploy/dev.sh test installs ETHERCATTLE_TEST_DEBIAN_PACKAGES)")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout,
        )


class PageElements(HTMLParser):
    """The parts of the rendered status page the test checks: cluster rows and chart lines."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.lines: dict[str, list[str]] = {}
        self.badge = ""
        self._svg: str | None = None
        self._in_badge = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and found.get("data-replica"):
            self.rows.append(str(found["data-replica"]))
        elif tag == "svg":
            self._svg = found.get("id")
        elif tag == "polyline" and self._svg:
            self.lines.setdefault(self._svg, []).append(str(found.get("data-replica")))
        self._in_badge = found.get("id") == "ready-badge"

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None

    def handle_data(self, data: str) -> None:
        if self._in_badge:
            self.badge += data


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def charted(replica: Replica, names: set[str], samples: int) -> dict[str, Any] | None:
    """/status.json once its chart holds ``samples`` samples of each replica, ``names`` among them (None before)."""
    data = status_json(replica)
    history = data["history"]
    return data if names <= history.keys() and all(len(s) >= samples for s in history.values()) else None


def test_status_page_renders_the_cluster_and_its_chart_in_headless_chromium(cluster: Cluster, tmp_path: Path) -> None:
    master = cluster.start_master(block_time=0.3)
    replicas = cluster.start_replicas("r1", "r2", **HEALTH)
    watch_readiness(replicas, all_status(200), 60, "both replicas ready")
    data = wait_for(lambda: charted(replicas[0], {"r1", "r2"}, samples=5), 30, "five samples of each replica for the chart")
    assert {row["replica"] for row in data["replicas"]} == {"r1", "r2"} and all(row["ready"] for row in data["replicas"])
    assert {"r1", "r2"} <= data["history"].keys() and all(len(s) >= 5 for s in data["history"].values())

    page = replicas[0].url + "/status"
    screenshot = tmp_path / "status.png"
    shot = chromium("--window-size=1280,1000", f"--screenshot={screenshot}", page)
    assert screenshot.exists(), shot.stderr[-2000:]
    assert png_size(screenshot) == (1280, 1000) and screenshot.stat().st_size > 20_000
    dom = chromium("--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    elements = PageElements()
    elements.feed(dom.stdout)
    assert sorted(elements.rows) == ["r1", "r2"]
    assert sorted(elements.lines.get("chart-head", [])) == ["r1", "r2"]
    assert sorted(elements.lines.get("chart-lag", [])) == ["r1", "r2"]
    assert elements.badge.strip() == "READY"
    print(f"\nscreenshot: {screenshot}")
    stop_master_and_drain(cluster, master, *replicas)


def test_status_table_shows_every_replica_after_a_worker_restart(cluster: Cluster) -> None:
    cluster.start_master(block_time=0.5)
    r1, r2, r3 = cluster.start_replicas("r1", "r2", "r3", **HEALTH)
    watch_readiness([r1, r2, r3], all_status(200), 60, "three replicas ready")
    wait_for_rows(r1, {"r1", "r2", "r3"}, 20)
    stop_together([r3.process, r1.process])  # r3's last row stays in the changelog: only a complete recovery shows it
    r1 = cluster.start_replica("r1", **HEALTH)
    watch_readiness([r1], all_status(200), 60, "r1 ready after its restart")
    rows = wait_for_rows(r1, {"r1", "r2", "r3"}, 20)
    assert rows["r3"]["stale"], "r3 stopped: its row must show as stale"
    assert not rows["r2"]["stale"] and rows["r2"]["ready"]
    recovered = [line for line in r1.log().splitlines() if "status table recovered" in line]  # either outcome is logged
    assert len(recovered) >= 2, "the table's recovery after the restart was not checked"
    print("\n" + recovered[-1][:400])


def wait_for_rows(replica: Replica, names: set[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = rows_by_replica(replica)
        if names <= rows.keys():
            return rows
        if time.monotonic() > deadline:
            raise TimeoutError(f"{replica.replica_id} shows rows of {sorted(rows)}, not all of {sorted(names)}")
        time.sleep(POLL)
