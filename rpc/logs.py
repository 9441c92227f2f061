"""eth_getLogs: a block range or one block hash, filtered by address and topics.

The filter object is decoded with geth's ``FilterCriteria`` rules and messages.
Each header's bloom is checked before the block's receipts are read, so a range
query costs one header read per block plus receipts only where the bloom matches.
The range and the result count are bounded by ``RpcLimits``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from eth_bloom import BloomFilter

from rpc.backend import BlockData, ReplicaBackend
from rpc.dispatch import Method, MethodTable
from rpc.errors import InvalidParams, LimitExceeded, ServerError
from rpc.format import JSON, receipt_logs
from rpc.blockref import BlockNumber, BlockTag, block_number
from rpc.params import ArgumentError, Param, TypeMismatch, decode_struct, hash32, json_kind

MAX_TOPICS = 4
MAX_ADDRESSES = 1000
"""geth's ``maxAddresses``: a filter names at most this many addresses."""
MAX_SUBTOPICS = 1000
"""geth's ``maxSubTopics``: one topic position offers at most this many alternatives.

Both bound what one installed filter (stored on the filter topic, up to FILTER_MAX of them)
and one log scan can be made to hold."""
_HEX = re.compile(r"[0-9a-fA-F]*")


@dataclass(frozen=True)
class LogFilter:
    """A decoded filter: either ``block_hash`` or a (from, to) range."""

    block_hash: bytes | None = None
    from_block: BlockNumber | None = None
    to_block: BlockNumber | None = None
    addresses: tuple[bytes, ...] = ()
    topics: tuple[tuple[bytes, ...], ...] = field(default_factory=tuple)
    """One alternative set per position; an empty set matches anything."""


# --- decoding (geth's FilterCriteria.UnmarshalJSON) ------------------------------------


def _hexutil_decode(text: str) -> bytes:
    """``hexutil.Decode``: 0x-prefixed, even-length hex (a bad digit reported first)."""
    if not text:
        raise ArgumentError("empty hex string")
    if not (len(text) >= 2 and text[0] == "0" and text[1] in "xX"):
        raise ArgumentError("hex string without 0x prefix")
    digits = text[2:]
    if not _HEX.fullmatch(digits):
        raise ArgumentError("invalid hex string")
    if len(digits) % 2:
        raise ArgumentError("hex string of odd length")
    return bytes.fromhex(digits)


def _sized(text: str, size: int, what: str) -> bytes:
    raw = _hexutil_decode(text)
    if len(raw) != size:
        raise ArgumentError(f"hex has invalid length {len(raw)} after decoding; expected {size} for {what}")
    return raw


def _addresses(value: Any) -> tuple[bytes, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            return (_sized(value, 20, "address"),)
        except ArgumentError as error:
            raise ArgumentError(f"invalid address: {error}") from None
    if not isinstance(value, list):
        raise ArgumentError("invalid addresses in query")
    if len(value) > MAX_ADDRESSES:
        raise ArgumentError("exceed max addresses")
    addresses = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ArgumentError(f"non-string address at index {index}")
        try:
            addresses.append(_sized(item, 20, "address"))
        except ArgumentError as error:
            raise ArgumentError(f"invalid address at index {index}: {error}") from None
    return tuple(addresses)


def _topic_position(value: Any) -> tuple[bytes, ...]:
    """One position: null (any), a topic, or alternatives (a null among them: any)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (_sized(value, 32, "topic"),)
    if not isinstance(value, list):
        raise ArgumentError("invalid topic(s)")
    if len(value) > MAX_SUBTOPICS:
        raise ArgumentError("exceed max subtopics")
    alternatives: list[bytes] = []
    for item in value:
        if item is None:
            return ()
        if not isinstance(item, str):
            raise ArgumentError("invalid topic(s)")
        alternatives.append(_sized(item, 32, "topic"))
    return tuple(alternatives)


def _topics_field(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeMismatch(json_kind(value), "[]interface {}", soft=True)
    return value


def log_filter(value: Any) -> LogFilter:
    """Decode eth_getLogs' argument as geth does (null: latest block, everything)."""
    if value is None:
        return LogFilter()
    raw = decode_struct(value, "input", {
        "blockHash": hash32,
        "fromBlock": block_number,
        "toBlock": block_number,
        "address": lambda v: v,
        "topics": _topics_field,
    })
    if "blockHash" in raw and ("fromBlock" in raw or "toBlock" in raw):
        raise ArgumentError("cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other")
    topics = tuple(_topic_position(t) for t in raw.get("topics") or [])
    return LogFilter(
        block_hash=raw.get("blockHash"),
        from_block=None if "blockHash" in raw else raw.get("fromBlock"),
        to_block=None if "blockHash" in raw else raw.get("toBlock"),
        addresses=_addresses(raw.get("address")),
        topics=topics,
    )


# --- matching -------------------------------------------------------------------------


def bloom_matches(bloom: int, flt: LogFilter) -> bool:
    """geth's ``bloomFilter``: may the block hold a matching log?"""
    if not flt.addresses and not any(flt.topics):
        return True
    blocks_bloom = BloomFilter(bloom)
    if flt.addresses and not any(address in blocks_bloom for address in flt.addresses):
        return False
    return all(not alternatives or any(topic in blocks_bloom for topic in alternatives)
               for alternatives in flt.topics)


def log_matches(address: bytes, topics: tuple[int, ...], flt: LogFilter) -> bool:
    """geth's ``filterLogs`` check for one log (positions beyond the log's topics fail)."""
    if flt.addresses and address not in flt.addresses:
        return False
    if len(flt.topics) > len(topics):
        return False
    for position, alternatives in enumerate(flt.topics):
        if alternatives and topics[position].to_bytes(32, "big") not in alternatives:
            return False
    return True


def block_logs(block: BlockData, flt: LogFilter) -> Iterator[JSON]:
    """Matching logs of one block, in block order."""
    if not bloom_matches(block.header.bloom, flt):
        return
    for index, receipt in enumerate(block.receipts):
        if not receipt.logs:
            continue
        for log, formatted in zip(receipt.logs, receipt_logs(block, index)):
            if log_matches(log.address, tuple(log.topics), flt):
                yield formatted


# --- the method -----------------------------------------------------------------------


def _resolve(backend: ReplicaBackend, number: BlockNumber | None, head: int) -> int:
    if number is BlockTag.PENDING:
        raise ServerError("pending logs are not supported")
    if number is BlockTag.SAFE or number is BlockTag.FINALIZED:
        header = backend.resolve_number(number)
        return head if header is None else int(header.block_number)
    if number is None or isinstance(number, BlockTag):
        return head
    return number


def eth_get_logs(backend: ReplicaBackend, flt: LogFilter) -> list[JSON]:
    if len(flt.topics) > MAX_TOPICS:
        raise ServerError("exceed max topics")
    limits = backend.limits
    if flt.block_hash is not None:
        block = backend.block_by_hash(flt.block_hash)
        if block is None:
            raise ServerError("unknown block")
        return _bounded(block_logs(block, flt), limits.logs_max_results)
    if (isinstance(flt.from_block, int) and isinstance(flt.to_block, int)
            and flt.from_block > 0 and flt.to_block > 0 and flt.from_block > flt.to_block):
        raise InvalidParams("invalid block range params")
    head = backend.head().block_number
    if isinstance(flt.to_block, int) and flt.to_block > head:
        raise InvalidParams("block range extends beyond current head block")
    first = _resolve(backend, flt.from_block, head)
    last = min(_resolve(backend, flt.to_block, head), head)
    if last - first + 1 > limits.logs_max_block_range:
        raise LimitExceeded(f"exceed maximum block range: {limits.logs_max_block_range}")
    return _bounded(_range_logs(backend, first, last, flt), limits.logs_max_results)


def _range_logs(backend: ReplicaBackend, first: int, last: int, flt: LogFilter) -> Iterator[JSON]:
    for number in range(first, last + 1):
        header = backend.header_by_number(number)
        if header is None:
            return
        if bloom_matches(header.bloom, flt):
            yield from block_logs(backend.block(header), flt)


def _bounded(logs: Iterator[JSON], limit: int) -> list[JSON]:
    result: list[JSON] = []
    for log in logs:
        if len(result) >= limit:
            raise LimitExceeded(f"query returned more than {limit} results")
        result.append(log)
    return result


METHODS: MethodTable = {
    "eth_getLogs": Method(eth_get_logs, (Param(log_filter, optional=False),), offload=True),
}
