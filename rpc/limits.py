"""Resource limits of the JSON-RPC service, in one frozen dataclass.

Defaults are go-ethereum's where geth has one (5 MB bodies, 1000-request batches,
25 MB batch responses, a 50M gas cap and 5 s for eth_call), so a replica behind a
load balancer answers the same requests a geth node would.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RpcLimits:
    """What one request may cost this replica."""

    max_body_bytes: int = 5 * 1024 * 1024
    """Largest HTTP request body accepted (geth: 413 "content length too large")."""

    max_batch_requests: int = 1000
    """Most requests in one batch (geth: "batch too large")."""

    max_batch_response_bytes: int = 25 * 1000 * 1000
    """Largest sum of results in one batch before -32003 "response too large"."""

    logs_max_block_range: int = 10_000
    """Most blocks one eth_getLogs may scan."""

    logs_max_results: int = 10_000
    """Most logs one eth_getLogs may return."""

    call_gas_cap: int = 50_000_000
    """Gas given to (and the most allowed for) eth_call, eth_estimateGas, eth_createAccessList."""

    offload_threads: int = 2
    """Threads that run the costly methods (execution, logs) beside the event loop. Few on
    purpose: with Python's GIL more threads only convoy (eth_call on one replica, wrk -c32:
    352 req/s with 6 threads, 517 with 2); a 5 s call holds one of them for 5 s."""

    call_timeout_seconds: float = 5.0
    """Wall-clock limit of one EVM execution (geth: "execution aborted (timeout = 5s)")."""

    request_timeout_seconds: float = 5.0
    """Wall-clock limit of one request, a whole batch included: its executions stop there and
    its remaining items answer -32002. Equal to geth's ``rpc.evmtimeout``, so a batch holds a
    thread no longer than one call may."""

    max_in_flight: int = 16
    """Most HTTP JSON-RPC requests handled at once; the next are answered 503 with Retry-After
    (JSON-RPC -32005) at once. A replica must stay current first: at 256 concurrent clients
    and no bound, one fell 72-122 messages behind and refused 6.7% of requests as not ready."""

    max_broker_waiting: int = 64
    """Most calls waiting on the broker at once (filters, sent transactions, "pending" nonces); they hold
    none of the ``max_in_flight`` places meanwhile, and the next is answered -32005 at once. A poll
    waits a fetch wait or two (about 50 ms on the local broker), so this bounds polls to about 20 times
    this many per second: 16 places answered 193 polls/s where unbounded waits had answered 716."""

    request_gas_budget: int = 500_000_000
    """Gas all executions of one request may use together (ten calls at the gas cap; every
    eth_estimateGas trial counts)."""

    fee_history_max_blocks: int = 1024
    """Most blocks eth_feeHistory covers (geth's max header/block history)."""

    fee_history_max_percentiles: int = 100
    """Most reward percentiles eth_feeHistory accepts (geth's maxQueryLimit)."""

    gas_price_check_blocks: int = 20
    """Blocks sampled by the gas price oracle (geth's GPO.Blocks)."""

    gas_price_percentile: int = 60
    """Percentile of sampled tips the oracle suggests (geth's GPO.Percentile)."""

    gas_price_default_tip: int = 1_000_000
    """Tip suggested when no block has a usable sample (geth's miner default, 0.001 gwei)."""

    gas_price_max: int = 500 * 10**9
    """Highest tip the oracle ever suggests (geth's GPO.MaxPrice)."""

    gas_price_ignore_under: int = 2
    """Tips below this are not sampled (geth's GPO.IgnorePrice)."""

    block_cache_size: int = 256
    """Decoded blocks (header, body, receipts, senders) kept in memory, by block hash."""

    response_cache_bytes: int = 64 * 1024 * 1024
    """Most bytes of encoded answers the response cache keeps (0: no cache); answers are keyed by
    the head hash they were read at, so the bound only decides how many polled questions stay warm."""

    block_wait_blocks: int = 0
    """How far past the head a named block may be and still be waited for (0: never wait). Off
    unless configured: only a replica behind a load balancer trails the blocks its clients saw
    (``RPC_BLOCK_WAIT_BLOCKS``); a master or a standalone database holds every block it knows."""

    block_wait_seconds: float = 0.5
    """The longest a call naming a block just past the head waits for it."""
