"""eth_call cost in process: the dispatcher and py-evm on a real LevelDB, with and without the shared caches.

    .venv/bin/python bench/call.py [--calls 2000] [--accounts 500]

Builds a dev chain in a LevelDB of its own (``--accounts`` funded recipients, so
the state trie has some depth, and the Store contract of the tests with a value
set), then answers ``eth_call`` requests one at a time through
``RpcService.handle_body``: JSON parsing, parameter checks, the offload thread,
py-evm and the response. No HTTP and no other process: the figure is the
replica's own CPU per call, which bounds a replica's eth_call rate (the HTTP
benchmark, ``bench/rpc.py``, adds aiohttp and shares the cores with wrk). The
response cache is off, so every request executes (a distinct call, as a cache
miss costs). Rows, measured in the same run:

- ``eth_call`` as a replica runs it (caches warm after the first call);
- ``eth_call`` with its caches emptied before every call (the call-state classes
  and the shared account and slot reads): what each call cost before they existed;
- ``eth_blockNumber``: the dispatch path alone, the floor under any method;
- ``eth_estimateGas`` of the Store's setter (a binary search: several executions);
- the same call traced by ``debug_traceCall`` (callTracer, and the struct logger
  that records every opcode), and the Store transaction traced by
  ``debug_traceTransaction`` (which replays its block from the parent's state);
- ``eth_simulateV1`` of the same call (one block of one call), and of a block of ten
  transfers with ``traceTransfers``: a simulated block's own cost (header, roots,
  settlement) on top of the execution.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402
from eth._utils.address import generate_contract_address  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_typing import Address  # noqa: E402
from eth_utils import to_checksum_address  # noqa: E402

from chain.dev import DEV_CHAIN_ID, DEV_PRIVATE_KEYS, DevMiner, init_dev_chain  # noqa: E402
from rpc.evmhooks import call_classes, fork_precompiles, throwaway_class  # noqa: E402
from rpc.limits import RpcLimits  # noqa: E402
from rpc.service import RpcService  # noqa: E402
from storage.leveldb import LevelDB  # noqa: E402
from tests.contracts import STORE_INIT  # noqa: E402

GWEI = 10**9
STORED = (1234).to_bytes(32, "big")


def build_chain(db: LevelDB, accounts: int, fork: str) -> str:
    """Fund ``accounts`` recipients, deploy Store and set its value; returns its address."""
    init_dev_chain(db, fork=fork)
    miner = DevMiner(db)
    key = DEV_PRIVATE_KEYS[0]
    sender = Account.from_key(key)

    def sign(nonce: int, **fields: object) -> bytes:
        tx = {"nonce": nonce, "chainId": DEV_CHAIN_ID, "type": 2, "maxFeePerGas": 10 * GWEI,
              "maxPriorityFeePerGas": GWEI, "gas": 21_000, "value": 0, **fields}
        return bytes(Account.sign_transaction(tx, key).raw_transaction)

    nonce = 0
    for start in range(0, accounts, 100):
        batch = [sign(nonce + i, to=(0x1000 + start + i).to_bytes(20, "big"), value=1) for i in range(min(100, accounts - start))]
        nonce += len(batch)
        miner.mine(batch)
    contract = to_checksum_address(generate_contract_address(Address(bytes.fromhex(sender.address[2:])), nonce))
    for block in ([sign(nonce, data=STORE_INIT, gas=300_000)], [sign(nonce + 1, to=contract, data=STORED, gas=100_000)]):
        if not miner.mine(block).included:
            raise RuntimeError(f"a setup transaction was not mined (nonce {nonce})")
    return contract


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Row:
    """One request's figures: wall seconds per request, and the process's CPU seconds over all of them."""

    seconds: list[float]
    cpu: float


async def measure(service: RpcService, body: bytes, calls: int, before_each: Callable[[], None]) -> Row:
    """Requests one at a time; the first (cold) answer is checked and not counted.

    CPU is the process's (every thread's) over the measured requests, the figure that
    other work on a shared box disturbs least.
    """
    answer = orjson.loads(await service.handle_body(body) or b"{}")
    if "result" not in answer:
        raise RuntimeError(f"the request failed: {answer}")
    seconds = []
    cpu_started = time.process_time()
    for _ in range(calls):
        before_each()
        started = time.perf_counter()
        await service.handle_body(body)
        seconds.append(time.perf_counter() - started)
    return Row(seconds, time.process_time() - cpu_started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="requests per row (default 2000)")
    parser.add_argument("--accounts", type=int, default=500, help="funded accounts in the state (default 500)")
    parser.add_argument("--simulations", type=int, default=300,
                        help="requests per eth_simulateV1 and eth_estimateGas row (default 300)")
    parser.add_argument("--fork", default="osaka", help="the dev chain's rules (default osaka; prague to compare)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ethercattle-bench-call-") as root:
        db = LevelDB(Path(root) / "chaindb")
        try:
            started = time.monotonic()
            contract = build_chain(db, args.accounts, args.fork)
            print(f"chain: {args.accounts} funded accounts and the Store contract at {contract}, "
                  f"built in {time.monotonic() - started:.1f}s", file=sys.stderr)
            service = RpcService(db, limits=RpcLimits(response_cache_bytes=0))

            def request(method: str, params: list[object]) -> bytes:
                return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})

            call = request("eth_call", [{"to": contract, "data": "0x00"}, "latest"])

            def simulate(calls: list[dict[str, object]], **options: object) -> bytes:
                return request("eth_simulateV1", [{"blockStateCalls": [{"calls": calls}], **options}, "latest"])

            funded = Account.from_key(DEV_PRIVATE_KEYS[0]).address
            transfers: list[dict[str, object]] = [
                {"from": funded, "to": to_checksum_address((0x1000 + i).to_bytes(20, "big")), "value": "0x1"}
                for i in range(10)
            ]

            def cold() -> None:
                for cached in (fork_precompiles, call_classes, throwaway_class):
                    cached.cache_clear()
                service.backend.call_reads.clear()

            backend = service.backend
            stored_tx = "0x" + backend.block(backend.head()).transactions[0].hash.hex()
            estimate = request("eth_estimateGas", [{"from": funded, "to": contract, "data": "0x" + STORED.hex()}, "latest"])
            call_tracer = {"tracer": "callTracer"}
            traces = [
                ("debug_traceCall, callTracer", request("debug_traceCall", [{"to": contract, "data": "0x00"}, "latest", call_tracer])),
                ("debug_traceCall, struct logger", request("debug_traceCall", [{"to": contract, "data": "0x00"}, "latest"])),
                ("debug_traceTransaction, callTracer", request("debug_traceTransaction", [stored_tx, call_tracer])),
                ("debug_traceTransaction, struct logger", request("debug_traceTransaction", [stored_tx])),
            ]
            rows = [
                ("eth_call, warm caches", asyncio.run(measure(service, call, args.calls, lambda: None))),
                ("eth_call, caches emptied per call", asyncio.run(measure(service, call, args.calls, cold))),
                ("eth_blockNumber (dispatch floor)", asyncio.run(measure(service, request("eth_blockNumber", []), args.calls, lambda: None))),
                ("eth_estimateGas, the Store's setter", asyncio.run(measure(service, estimate, args.simulations, lambda: None))),
                *((name, asyncio.run(measure(service, body, args.calls, lambda: None))) for name, body in traces),
                ("eth_simulateV1, 1 block of that call", asyncio.run(measure(service, simulate([{"to": contract, "data": "0x00"}]),
                                                                            args.simulations, lambda: None))),
                ("eth_simulateV1, 10 transfers, traced", asyncio.run(measure(service, simulate(transfers, traceTransfers=True),
                                                                            args.simulations, lambda: None))),
            ]
        finally:
            db.close()

    warm = rows[0][1].cpu / len(rows[0][1].seconds)
    print(f"\neth_call in process, {args.calls} sequential requests per row ({args.simulations} for eth_simulateV1 "
          "and eth_estimateGas) "
          "through RpcService.handle_body (LevelDB, one core, response cache off)")
    print(f"{'request':38} {'per s':>8} {'p50 us':>8} {'p99 us':>8} {'CPU us':>8} {'CPU vs warm eth_call':>21}")
    for name, row in rows:
        seconds = row.seconds
        cpu = row.cpu / len(seconds)
        print(f"{name:38} {len(seconds) / sum(seconds):8,.0f} {statistics.median(seconds) * 1e6:8,.0f} "
              f"{percentile(seconds, 0.99) * 1e6:8,.0f} {cpu * 1e6:8,.0f} {cpu / warm:20.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
