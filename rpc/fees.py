"""Fees: geth's gas price oracle, eth_feeHistory and the blob base fee.

The oracle is geth's (``eth/gasprice``): sample the three lowest tips of each of
the last blocks (ignoring dust tips and the producer's own transactions), take a
percentile, cap it. Its answer depends only on the head, so it is cached by the
head's hash. eth_feeHistory follows geth's ``FeeHistory`` field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth.abc import BlockHeaderAPI
from eth.vm.forks.london import LondonVM
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas

from rpc import params as p
from rpc.backend import (
    BlockData,
    ReplicaBackend,
    blob_base_fee,
    has_blobs,
    max_blob_gas,
    next_excess_blob_gas,
)
from rpc.dispatch import Method, MethodTable
from rpc.errors import ServerError
from rpc.format import JSON, effective_tip, quantity
from eth_typing import BlockNumber as EvmBlockNumber

from rpc.blockref import BlockNumber, BlockTag, block_number

SAMPLES_PER_BLOCK = 3


# --- the gas price oracle ---------------------------------------------------------------


def block_tip_samples(block: BlockData, limit: int, ignore_under: int) -> list[int]:
    """geth's ``getBlockValues``: the lowest tips of a block, producer's own excluded."""
    pairs = sorted(
        ((effective_tip(tx, block.base_fee), index) for index, tx in enumerate(block.transactions)),
        key=lambda pair: pair[0],
    )
    samples: list[int] = []
    for tip, index in pairs:
        if tip < ignore_under or block.sender(index) == block.header.coinbase:
            continue
        samples.append(tip)
        if len(samples) >= limit:
            break
    return samples


def suggest_tip(backend: ReplicaBackend) -> int:
    """geth's ``SuggestTipCap``, cached per head block."""
    head = backend.head()
    key = ("suggested-tip", head.hash)
    cached = backend.derived.get(key)
    if isinstance(cached, int):
        return cached
    tip = _compute_tip(backend, head)
    backend.derived.put(key, tip)
    return tip


def _compute_tip(backend: ReplicaBackend, head: BlockHeaderAPI) -> int:
    """Sample the newest blocks; a block with one (or no) sample earns one more block."""
    limits = backend.limits
    default = limits.gas_price_default_tip
    check_blocks = limits.gas_price_check_blocks
    number: int = head.block_number
    queued: list[int] = []
    while len(queued) < check_blocks and number > 0:
        queued.append(number)
        number -= 1
    results: list[int] = []
    while queued:
        block = backend.block_by_number(queued.pop(0))
        values = [] if block is None else block_tip_samples(
            block, SAMPLES_PER_BLOCK, limits.gas_price_ignore_under)
        if not values:
            values = [default]
        if len(values) == 1 and len(results) + 1 + len(queued) < check_blocks * 2 and number > 0:
            queued.append(number)
            number -= 1
        results.extend(values)
    price = default
    if results:
        results.sort()
        price = results[(len(results) - 1) * limits.gas_price_percentile // 100]
    return min(price, limits.gas_price_max)


def eth_max_priority_fee_per_gas(backend: ReplicaBackend) -> str:
    return quantity(suggest_tip(backend))


def eth_gas_price(backend: ReplicaBackend) -> str:
    """The suggested tip plus the head's base fee (legacy transactions pay both)."""
    base_fee = getattr(backend.head(), "base_fee_per_gas", None) or 0
    return quantity(suggest_tip(backend) + base_fee)


def eth_base_fee(backend: ReplicaBackend) -> str | None:
    """The base fee of the block after the head (null before London, which has none)."""
    head = backend.head()
    if getattr(head, "base_fee_per_gas", None) is None:
        return None
    return quantity(calculate_expected_base_fee_per_gas(head))


def eth_blob_base_fee(backend: ReplicaBackend) -> str | None:
    """The head block's blob base fee (null before Cancun, as geth)."""
    head = backend.head()
    excess = getattr(head, "excess_blob_gas", None)
    vm_class = backend.vm_class(head)
    if excess is None or not has_blobs(vm_class):
        return None
    return quantity(blob_base_fee(vm_class, excess))


# --- fee history ---------------------------------------------------------------------------


@dataclass
class BlockFees:
    """One block's row of eth_feeHistory."""

    base_fee: int
    next_base_fee: int
    gas_used_ratio: float
    blob_base_fee: int
    next_blob_base_fee: int
    blob_gas_used_ratio: float
    reward: list[int] | None


def block_fees(backend: ReplicaBackend, header: BlockHeaderAPI, percentiles: list[float]) -> BlockFees:
    """geth's ``processBlock`` for one block.

    No time fork the next block may reach enters here: geth asks ``IsLondon(number + 1)``
    (a block fork, which the schedule by number answers) and prices the next blob base fee
    under this block's own fork (``CalcExcessBlobGas(config, header, header.Time)``).
    """
    vm_class = backend.vm_class(header)
    next_vm = backend.chain.get_vm_class_for_block_number(EvmBlockNumber(header.block_number + 1))
    base_fee = getattr(header, "base_fee_per_gas", None)
    next_base_fee = (calculate_expected_base_fee_per_gas(header)
                     if issubclass(next_vm, LondonVM) else 0)
    excess = getattr(header, "excess_blob_gas", None)
    blob_fee = next_blob_fee = 0
    blob_ratio = 0.0
    if excess is not None and has_blobs(vm_class):
        blob_fee = blob_base_fee(vm_class, excess)
        next_blob_fee = blob_base_fee(vm_class, next_excess_blob_gas(vm_class, header))
        blob_ratio = header.blob_gas_used / max_blob_gas(vm_class)
    reward = _rewards(backend.block(header), percentiles) if percentiles else None
    return BlockFees(base_fee or 0, next_base_fee, go_float(header.gas_used / header.gas_limit),
                     blob_fee, next_blob_fee, go_float(blob_ratio), reward)


def _rewards(block: BlockData, percentiles: list[float]) -> list[int]:
    """Tips at gas-weighted percentiles of the block (zeros for an empty block)."""
    if not block.transactions:
        return [0] * len(percentiles)
    tips = sorted(
        ((effective_tip(tx, block.base_fee), block.gas_used(index))
         for index, tx in enumerate(block.transactions)),
        key=lambda pair: pair[0],
    )
    rewards, index, gas_sum = [], 0, tips[0][1]
    for percentile in percentiles:
        threshold = int(block.header.gas_used * percentile / 100)
        while gas_sum < threshold and index < len(tips) - 1:
            index += 1
            gas_sum += tips[index][1]
        rewards.append(tips[index][0])
    return rewards


def go_float(value: float) -> float | int:
    """Go writes integral floats without a fraction (0, not 0.0)."""
    return int(value) if value.is_integer() else value


def _check_percentiles(percentiles: list[float], limit: int) -> None:
    if len(percentiles) > limit:
        raise ServerError(f"invalid reward percentile: over the query limit {limit}")
    for index, percentile in enumerate(percentiles):
        if percentile < 0 or percentile > 100:
            raise ServerError(f"invalid reward percentile: {percentile:f}")
        if index > 0 and percentile <= percentiles[index - 1]:
            raise ServerError(f"invalid reward percentile: #{index - 1}:{percentiles[index - 1]:f}"
                              f" >= #{index}:{percentile:f}")


def _last_block(backend: ReplicaBackend, newest: BlockNumber) -> int:
    head = backend.head().block_number
    if isinstance(newest, BlockTag):
        settled = backend.resolve_number(newest)
        return head if settled is None else int(settled.block_number)
    if newest > head:
        raise ServerError(f"request beyond head block: requested {newest}, head {head}")
    return newest


def eth_fee_history(backend: ReplicaBackend, count: int, newest: BlockNumber,
                    percentiles: list[float] | None) -> dict[str, Any]:
    """geth's eth_feeHistory: per-block base fees, gas ratios and reward percentiles."""
    percentiles = percentiles or []
    _check_percentiles(percentiles, backend.limits.fee_history_max_percentiles)
    if count < 1:
        return {"oldestBlock": "0x0", "gasUsedRatio": None}
    count = min(count, backend.limits.fee_history_max_blocks)
    last = _last_block(backend, newest)
    count = min(count, last + 1)
    oldest = last + 1 - count
    rows = []
    for number in range(oldest, last + 1):
        header = backend.header_by_number(number)
        if header is None:
            break
        rows.append(block_fees(backend, header, percentiles))
    if not rows:
        return {"oldestBlock": "0x0", "gasUsedRatio": None}
    return _history_json(oldest, rows, bool(percentiles))


def _history_json(oldest: int, rows: list[BlockFees], with_rewards: bool) -> JSON:
    result: JSON = {"oldestBlock": quantity(oldest)}
    if with_rewards:
        result["reward"] = [[quantity(r) for r in row.reward or []] for row in rows]
    result["baseFeePerGas"] = [quantity(row.base_fee) for row in rows] + [quantity(rows[-1].next_base_fee)]
    result["gasUsedRatio"] = [row.gas_used_ratio for row in rows]
    result["baseFeePerBlobGas"] = ([quantity(row.blob_base_fee) for row in rows]
                                   + [quantity(rows[-1].next_blob_base_fee)])
    result["blobGasUsedRatio"] = [row.blob_gas_used_ratio for row in rows]
    return result


METHODS: MethodTable = {
    # The oracle decodes up to 40 blocks once per head: off the event loop.
    "eth_gasPrice": Method(eth_gas_price, offload=True),
    "eth_maxPriorityFeePerGas": Method(eth_max_priority_fee_per_gas, offload=True),
    "eth_blobBaseFee": Method(eth_blob_base_fee),
    "eth_baseFee": Method(eth_base_fee),
    "eth_feeHistory": Method(eth_fee_history, (
        p.required(p.hex_or_decimal64),
        p.required(block_number),
        p.required(p.list_of(p.float64, "[]float64")),
    ), offload=True),
}
