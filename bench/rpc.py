"""JSON-RPC benchmark: one replica beside anvil on the same transactions, and a no-op aiohttp app.

    .venv/bin/python bench/rpc.py [--duration 5] [--warmup 1] [--connections 32] [--no-anvil]

Starts a real local broker, a dev master (``python -m pipeline master --dev``)
and two replica workers (``faust -L uvloop -A pipeline worker``, with the fetch wait
the deployment files set) as processes, as the integration tests do: one with its
response cache (repeated questions are answered from memory) and one with
``ETHERCATTLE_RPC_RESPONSE_CACHE_BYTES=0`` (every call is a miss: the figure for
distinct questions), and anvil (npm ``@foundry-rs/anvil``, chain id 1337, the same
"test ... junk" mnemonic). The same signed raw transactions (transfers,
the deployment of a small storage contract, a call that sets its value) go to
the dev master and to anvil, one at a time, so both chains hold one
transaction per block. Once the replica serves the last receipt, wrk
(``-t1 -c32 --latency``, one Lua script per request body) measures, against
the replica and then anvil:

    eth_blockNumber, eth_getBalance(latest), eth_getBlockByNumber(latest, false),
    eth_getTransactionReceipt, eth_call (the contract's getter)

with the server's CPU per request (its process's user + system time over the
measured run, from /proc, divided by the requests answered), and, beside each call
in the same run, the no-op: a bare aiohttp app (asyncio loop, its own process)
that answers the same request with the replica's own result, encoded once (only
the id is spliced in): the same bytes on the wire, so wrk, which reads every
answer, costs the same share of the cores against both. It was the ceiling of a
replica serving through aiohttp; since a replica answers plain posts off the
socket (``rpc/frontdoor.py``) it can beat it, and the ratio says by how much.
Run order per call: no-op, replica, anvil, each after a short warm-up.

wrk's Lua script counts every answer that is not HTTP 200 or carries a
JSON-RPC ``"error"``; a row with such answers is flagged, since an error
answered fast (e.g. a replica that turned unready under load) inflates req/s.

Load generator and servers share the same cores (2 on the project's machines),
so every figure includes wrk's own CPU; numbers are noisy when anything else
runs on the box. Needs wrk (Debian package ``wrk``, installed when missing and
running as root) and npm for anvil (``deploy/anvil.py`` installs it once into ``.bench/cache/anvil``,
which git ignores); without npm the anvil columns are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import deploy.anvil  # noqa: E402
from deploy.localbroker import LocalBroker, free_port, wait_for_port  # noqa: E402
from tests.integration.harness import wait_for  # noqa: E402

CHAIN_ID = 1337
MNEMONIC = "test test test test test test test test test test test junk"
RECIPIENT = "0x000000000000000000000000000000000000bEEF"
GWEI = 10**9
STORED = 1234

# --- the contract: a storage slot with a setter and a getter, assembled by hand ---------
#   set(uint256) 0x60fe47b1: slot0 = arg          get() 0x6d4ce63c: return slot0
#   the constructor stores 42, then returns the runtime code.
RUNTIME = bytes.fromhex(
    "600035" "60e01c"                     # selector = calldataload(0) >> 224
    "80" "6360fe47b1" "14" "601e" "57"    # == set  -> jump 0x1e
    "80" "636d4ce63c" "14" "6026" "57"    # == get  -> jump 0x26
    "600080fd"                            # revert(0, 0)
    "5b" "600435" "600055" "00"           # 0x1e: sstore(0, calldataload(4)); stop
    "5b" "600054" "600052" "6020" "6000" "f3"  # 0x26: mstore(0, sload(0)); return(0, 32)
)
assert len(RUNTIME) == 0x32 and RUNTIME[0x1E] == RUNTIME[0x26] == 0x5B
INITCODE = bytes.fromhex(
    "602a600055"                          # sstore(0, 42)
    f"60{len(RUNTIME):02x}" "6011" "6000" "39"  # codecopy(0, 0x11, len)
    f"60{len(RUNTIME):02x}" "6000" "f3"   # return(0, len)
) + RUNTIME
assert len(INITCODE) == 0x11 + len(RUNTIME)
GET_SELECTOR = "0x6d4ce63c"
DEPLOYED_FETCH_WAIT = "500"
"""``ETHERCATTLE_FETCH_MAX_WAIT_MS`` as deploy/compose and deploy/k8s set it: the replicas' log readers poll as
deployed. The default (20 ms, for Tansu's late fetch answers) costs an idle replica about 6% of a core more,
which a per-request figure would charge to whatever the run measured."""
SET_SELECTOR = bytes.fromhex("60fe47b1")


# --- small helpers ------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rpc(url: str, method: str, *params: Any, timeout: float = 30.0) -> Any:
    """One JSON-RPC call; returns the whole response object."""
    import urllib.error
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read() or b"null")


def result(url: str, method: str, *params: Any) -> Any:
    answer = rpc(url, method, *params)
    if not isinstance(answer, dict) or "error" in answer:
        raise RuntimeError(f"{method} on {url}: {answer}")
    return answer["result"]


def stop_group(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group we started (start_new_session), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --- tools: wrk and anvil -----------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing: installing the Debian package")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
        if found:
            return found
    sys.exit("bench/rpc.py needs wrk, the load generator: `apt-get install -y wrk` (as root), then run again")


def ensure_anvil(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    try:
        return deploy.anvil.ensure_anvil()
    except deploy.anvil.AnvilUnavailable as exc:
        log(f"{exc}: the anvil columns are left out")
        return None


# --- the no-op aiohttp app ----------------------------------------------------------------


def serve_noop(port: int, answers_file: Path) -> None:
    """A bare aiohttp app: parse the JSON-RPC request, answer its method's constant result (encoded once) with its id.

    The constants are the replica's own answers: a no-op that answered "0x0" to every method sent a
    1.5 KB receipt's worth less to wrk, which shares the cores and reads every answer."""
    from aiohttp import web

    answers = {method: json.dumps(value, separators=(",", ":")).encode()
               for method, value in json.loads(answers_file.read_text()).items()}

    async def handle(request: web.Request) -> web.Response:
        call = json.loads(await request.read())
        body = b'{"jsonrpc":"2.0","id":' + json.dumps(call.get("id")).encode() + b',"result":' + answers[call["method"]] + b"}"
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- wrk ------------------------------------------------------------------------------------

LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]

local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"error"', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), b,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


@dataclass
class Measure:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad_answers: int
    socket_errors: int
    cpu_seconds: float = 0.0
    """The server process's CPU time (user + system) over the measured run."""

    @property
    def cpu_us(self) -> float:
        """Server CPU per request answered, in microseconds."""
        return self.cpu_seconds / self.requests * 1e6 if self.requests else 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def clean(self) -> bool:
        return self.bad_answers == 0 and self.socket_errors == 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(wrk: str, url: str, body: str, seconds: float, connections: int, workdir: Path, pid: int | None = None) -> Measure:
    script = workdir / "call.lua"
    script.write_text(LUA.format(body=body))
    args = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s", "-s", str(script), url]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30)
    cpu = cpu_seconds(pid) - cpu_before if pid else 0.0
    line = next((line for line in done.stdout.splitlines() if line.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    requests, micros, p50, p99, bad, errors = (int(float(v)) for v in line.split()[1:])
    return Measure(requests, micros / 1e6, p50 / 1000, p99 / 1000, bad, errors, cpu)


# --- the chain state -----------------------------------------------------------------------


def signed_transactions() -> tuple[list[tuple[str, str]], str]:
    """[(label, raw hex)] and the contract's address: 5 transfers, a deployment, a set()."""
    from eth_account import Account
    from eth_utils import keccak, to_checksum_address
    import rlp

    from chain.dev import DEV_PRIVATE_KEYS

    def sign(key: str, nonce: int, **fields: Any) -> str:
        tx = {"nonce": nonce, "chainId": CHAIN_ID, "type": 2, "maxFeePerGas": 10 * GWEI,
              "maxPriorityFeePerGas": GWEI, "gas": 21_000, "value": 0, **fields}
        return "0x" + bytes(Account.sign_transaction(tx, key).raw_transaction).hex()

    txs = [(f"transfer {i + 1} ether", sign(DEV_PRIVATE_KEYS[i], 0, to=RECIPIENT, value=(i + 1) * 10**18)) for i in range(5)]
    deployer = Account.from_key(DEV_PRIVATE_KEYS[5]).address
    contract = to_checksum_address(keccak(rlp.encode([bytes.fromhex(deployer[2:]), 0]))[12:])
    txs.append(("deploy storage contract", sign(DEV_PRIVATE_KEYS[5], 0, data="0x" + INITCODE.hex(), gas=200_000)))
    txs.append((f"set({STORED})", sign(DEV_PRIVATE_KEYS[6], 0, to=contract, data="0x" + (SET_SELECTOR + STORED.to_bytes(32, "big")).hex(),
                                        gas=100_000)))
    return txs, contract


def send_all(url: str, txs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Send one at a time, each waiting for its receipt, so every transaction gets its own block."""
    receipts = []
    for label, raw in txs:
        tx_hash = result(url, "eth_sendRawTransaction", raw)
        receipt = wait_for(lambda: rpc(url, "eth_getTransactionReceipt", tx_hash).get("result"), 30, f"the receipt of {label}")
        if receipt["status"] != "0x1":
            raise RuntimeError(f"{label} failed on {url}: {receipt}")
        receipts.append(receipt)
    return receipts


def calls(contract: str, receipt_hash: str) -> list[tuple[str, str, list[Any]]]:
    return [
        ("eth_blockNumber", "eth_blockNumber", []),
        ("eth_getBalance(latest)", "eth_getBalance", [RECIPIENT, "latest"]),
        ("eth_getBlockByNumber(latest,false)", "eth_getBlockByNumber", ["latest", False]),
        ("eth_getTransactionReceipt", "eth_getTransactionReceipt", [receipt_hash]),
        ("eth_call get()", "eth_call", [{"to": contract, "data": GET_SELECTOR}, "latest"]),
    ]


def summary_of(method: str, value: Any) -> Any:
    """The part of an answer both chains should agree on (hashes and timestamps differ)."""
    if method == "eth_getBlockByNumber":
        return {"number": value["number"], "transactions": len(value["transactions"]), "gasUsed": value["gasUsed"]}
    if method == "eth_getTransactionReceipt":
        return {k: value.get(k) for k in ("transactionHash", "blockNumber", "status", "gasUsed", "to", "contractAddress")}
    return value


# --- main -----------------------------------------------------------------------------------


def fmt_rate(m: Measure | None) -> str:
    return "-" if m is None else f"{m.rate:,.0f}" + ("" if m.clean else "!")


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds wrk measures each call (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured load before each measure (0: none)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (default 32; always -t1)")
    parser.add_argument("--anvil", help="path to an anvil binary (default: npm's @foundry-rs/anvil in .bench/cache/anvil)")
    parser.add_argument("--no-anvil", action="store_true", help="measure the replica and the no-op only")
    parser.add_argument("--serve-noop", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--noop-answers", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_noop:
        serve_noop(args.serve_noop, args.noop_answers)
        return 0

    # SIGTERM/SIGHUP run the finally blocks below too, so no process outlives the run.
    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    started = time.monotonic()
    wrk = ensure_wrk()
    anvil = None if args.no_anvil else ensure_anvil(args.anvil)
    root = Path(tempfile.mkdtemp(prefix="ethercattle-bench-rpc-"))
    load_before = os.getloadavg()
    log(f"work dir {root}; load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} on {os.cpu_count()} cores")

    from tests.integration.harness import Cluster, stop

    processes: list[subprocess.Popen[bytes]] = []
    cluster: Cluster | None = None
    with LocalBroker(log_path=root / "broker.log") as broker:
        try:
            cluster = Cluster(broker.url, root, name="benchrpc")
            master_port = free_port()
            log("starting the dev master and two replicas (one with its response cache, one without)")
            cluster.start_dev_master(master_port, block_time=0)
            master_url = f"http://127.0.0.1:{master_port}/"
            # Every connection is admitted: shedding is what a replica does past its capacity, and this
            # measures the capacity (at -c32 and 16 slots, slow calls were answered 503 between the results).
            serving = {"fetch_max_wait_ms": DEPLOYED_FETCH_WAIT, "rpc_max_in_flight": str(max(16, args.connections))}
            replica = cluster.start_replica("r1", **serving)
            uncached = cluster.start_replica("r2", **serving, rpc_response_cache_bytes="0")
            anvil_url = None
            if anvil:
                anvil_port = free_port()
                anvil_process = subprocess.Popen(
                    [anvil, "--host", "127.0.0.1", "--port", str(anvil_port), "--chain-id", str(CHAIN_ID), "--mnemonic", MNEMONIC,
                     "--hardfork", "prague", "--silent"],
                    stdout=open(root / "anvil.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
                )
                processes.append(anvil_process)
                wait_for_port(anvil_port, 30)
                anvil_url = f"http://127.0.0.1:{anvil_port}/"
                log(f"anvil {result(anvil_url, 'web3_clientVersion')} on {anvil_url}")
            replica.wait_ready(90)
            uncached.wait_ready(90)
            log(f"replicas ready at {replica.url} (cached) and {uncached.url} (no cache)")

            txs, contract = signed_transactions()
            master_receipts = send_all(master_url, txs)
            if anvil_url:
                send_all(anvil_url, txs)
            last_hash = master_receipts[-1]["transactionHash"]
            replica_url = replica.url + "/"
            uncached_url = uncached.url + "/"
            for url in (replica_url, uncached_url):
                wait_for(lambda: (rpc(url, "eth_getTransactionReceipt", last_hash) or {}).get("result"), 60,
                         "the replicas to serve the last receipt")
            if master_receipts[5]["contractAddress"].lower() != contract.lower():
                raise RuntimeError(f"contract at {master_receipts[5]['contractAddress']}, expected {contract}")
            log(f"{len(txs)} transactions in blocks {int(master_receipts[0]['blockNumber'], 16)}..{int(master_receipts[-1]['blockNumber'], 16)} "
                f"on the master{' and anvil' if anvil_url else ''}; the replica serves them; contract {contract}")

            # Same chain state: compare what both answer before measuring.
            plan = calls(contract, last_hash)
            agreement = []
            answers = {}
            for name, method, params in plan:
                answers[method] = mine = result(replica_url, method, *params)
                theirs = result(anvil_url, method, *params) if anvil_url else None
                same = anvil_url is None or summary_of(method, mine) == summary_of(method, theirs)
                agreement.append((name, summary_of(method, mine), None if theirs is None else summary_of(method, theirs), same))

            # The no-op: its own process, answering what the replica answers, measured the same way.
            (root / "noop-answers.json").write_text(json.dumps(answers))
            noop_port = free_port()
            noop = subprocess.Popen([sys.executable, __file__, "--serve-noop", str(noop_port), "--noop-answers", str(root / "noop-answers.json")],
                                    stdout=open(root / "noop.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
            processes.append(noop)
            wait_for_port(noop_port, 20)

            def measure(url: str, method: str, params: list[Any], pid: int | None = None) -> Measure:
                body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, separators=(",", ":"))
                if args.warmup > 0:
                    run_wrk(wrk, url, body, args.warmup, args.connections, root)
                return run_wrk(wrk, url, body, args.duration, args.connections, root, pid)

            log(f"measuring: wrk -t1 -c{args.connections}, {args.warmup:g}s warm-up + {args.duration:g}s per call and server "
                f"(about {len(plan) * (4 if anvil_url else 3) * (args.warmup + args.duration + 0.5):.0f}s)")
            # The no-op is measured beside every call, so each row has its own under the box's changing load.
            rows: list[tuple[str, Measure, Measure, Measure | None, Measure]] = []
            for name, method, params in plan:
                no_op = measure(f"http://127.0.0.1:{noop_port}/", method, params, noop.pid)
                on_replica = measure(replica_url, method, params, replica.process.pid)
                on_uncached = measure(uncached_url, method, params, uncached.process.pid)
                on_anvil = measure(anvil_url, method, params, anvil_process.pid) if anvil_url else None
                rows.append((name, on_replica, on_uncached, on_anvil, no_op))
                log(f"{name}: replica {fmt_rate(on_replica)} req/s repeated, {fmt_rate(on_uncached)} distinct, "
                    f"anvil {fmt_rate(on_anvil)} req/s, no-op {fmt_rate(no_op)} req/s")
            ready_after = replica.readiness()[0]
        finally:
            for process in processes:
                stop_group(process)
            if cluster is not None:
                for process in cluster.processes:
                    stop(process)

    load_after = os.getloadavg()
    print()
    print(f"JSON-RPC against ONE replica at a time (faust worker){' and anvil' if anvil_url else ''}, wrk -t1 -c{args.connections}, "
          f"{args.duration:g}s per call after {args.warmup:g}s warm-up; latency in ms")
    print(f"wrk and every server share this machine's {os.cpu_count()} cores (the load generator's own CPU is in every figure); "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after: other work on the box makes these numbers noisy")
    header = (f"{'call':<36}{'repeated req/s':>15}{'p99':>7}{'CPU us':>8}{'distinct req/s':>15}{'p99':>7}{'CPU us':>8}"
              f"{'anvil req/s':>12}{'p99':>7}{'CPU us':>8}{'no-op req/s':>12}{'CPU us':>8}{'rep/no-op':>10}{'dist/no-op':>11}")
    print(header)
    print("-" * len(header))
    for name, mine, missing, theirs, no_op in rows:
        print(f"{name:<36}{fmt_rate(mine):>15}{fmt_ms(mine.p99_ms):>7}{mine.cpu_us:>8.0f}"
              f"{fmt_rate(missing):>15}{fmt_ms(missing.p99_ms):>7}{missing.cpu_us:>8.0f}"
              f"{fmt_rate(theirs):>12}{fmt_ms(theirs.p99_ms if theirs else None):>7}{theirs.cpu_us if theirs else 0:>8.0f}"
              f"{fmt_rate(no_op):>12}{no_op.cpu_us:>8.0f}"
              f"{mine.rate / no_op.rate if no_op.rate else 0:>10.2f}{missing.rate / no_op.rate if no_op.rate else 0:>11.2f}")
    print("repeated: the replica with its response cache, the same request each time; distinct: a replica with "
          "RPC_RESPONSE_CACHE_BYTES=0, so every call is computed (the cost of a question not asked before); "
          "CPU us: the server process's CPU per request")
    no_ops = sorted((row[4] for row in rows), key=lambda m: m.rate)
    middle = no_ops[len(no_ops) // 2]
    print(f"{'no-op aiohttp app (same bytes)':<36}{fmt_rate(middle):>15}{fmt_ms(middle.p99_ms):>7}"
          f"   median of {len(no_ops)} runs, one beside each call ({no_ops[0].rate:,.0f} to {no_ops[-1].rate:,.0f} req/s)")
    flagged = [(name, who, m) for name, mine, missing, theirs, no_op in rows
               for who, m in (("replica", mine), ("the uncached replica", missing), ("anvil", theirs), ("the no-op server", no_op))
               if m and not m.clean]
    for name, who, m in flagged:
        print(f"! {name} on {who}: {m.bad_answers} answers were not HTTP 200 with a result, {m.socket_errors} socket errors/timeouts")
    if ready_after != 200:
        print(f"! the replica's /readyz answered {ready_after} after the run")
    print()
    print("same chain state (replica vs anvil, before measuring):" if anvil_url else "the replica's answers (no anvil to compare):")
    for name, mine_value, their_value, same in agreement:
        shown = json.dumps(mine_value) if same else f"replica {json.dumps(mine_value)} / anvil {json.dumps(their_value)}"
        print(f"  {'same' if same and their_value is not None else 'n/a ' if their_value is None else 'DIFF'}  {name}: {shown}")
    print(f"whole run: {time.monotonic() - started:.0f}s; logs in {root}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as stopped:
        log(f"interrupted ({stopped or 'Ctrl-C'}): every process this run started is stopped")
        sys.exit(130)
