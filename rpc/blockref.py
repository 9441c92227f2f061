"""Block parameters: tags, numbers, hashes and EIP-1898 objects, decoded as geth does.

geth has two types here with different rules and messages: ``rpc.BlockNumber``
(a tag or a quantity, quotes optional) and ``rpc.BlockNumberOrHash`` (also a
32-byte hash or a ``{blockHash, requireCanonical}`` / ``{blockNumber}`` object).
Tags stay symbolic until the backend resolves them against the head of the moment.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping

from rpc.params import (
    MAX_INT64,
    ArgumentError,
    TypeMismatch,
    fixed_hex,
    PlainTypeError,
    boolean,
    decode_struct,
    decode_uint64_text,
    hash32,
    json_kind,
    raw_text,
)


class BlockTag(enum.Enum):
    """The named blocks of the JSON-RPC spec."""

    LATEST = "latest"
    PENDING = "pending"
    SAFE = "safe"
    FINALIZED = "finalized"


BlockNumber = int | BlockTag
"""An explicit block number, or a tag resolved against the head at request time."""

_TAGS: Mapping[str, BlockNumber] = {
    "earliest": 0,
    "latest": BlockTag.LATEST,
    "pending": BlockTag.PENDING,
    "safe": BlockTag.SAFE,
    "finalized": BlockTag.FINALIZED,
}


@dataclass(frozen=True)
class BlockRef:
    """EIP-1898: a block by number/tag, or by hash (optionally required canonical)."""

    number: BlockNumber | None = None
    block_hash: bytes | None = None
    require_canonical: bool = False


LATEST = BlockRef(number=BlockTag.LATEST)


def block_number(value: Any) -> BlockNumber:
    """``rpc.BlockNumber``: a tag or a quantity up to int64 (quotes optional, as geth)."""
    text = raw_text(value).strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    if text in _TAGS:
        return _TAGS[text]
    number = decode_uint64_text(text)
    if number > MAX_INT64:
        raise ArgumentError("block number larger than int64")
    return number


def block_ref(value: Any) -> BlockRef:
    """``rpc.BlockNumberOrHash``: a tag, a quantity, a 32-byte hash, or an EIP-1898 object."""
    if value is None:
        return BlockRef()
    if isinstance(value, dict):
        try:
            return _block_ref_object(value)
        except TypeMismatch:
            pass  # geth retries the input as a string, which an object is not
        except ArgumentError:
            raise
        raise TypeMismatch("object", "string")
    if not isinstance(value, str):
        raise TypeMismatch(json_kind(value), "string")
    if value in _TAGS:
        return BlockRef(number=_TAGS[value])
    if len(value) == 66:
        return BlockRef(block_hash=_fixed_text_hash(value))
    number = decode_uint64_text(value)
    if number > MAX_INT64:
        raise ArgumentError("blocknumber too high")
    return BlockRef(number=number)


def _fixed_text_hash(text: str) -> bytes:
    """``common.Hash.UnmarshalText``: the bare decode errors, not the json: wrapper."""
    try:
        return fixed_hex(text, 32, "Hash")
    except PlainTypeError as error:
        raise ArgumentError(str(error)) from None


def _block_ref_object(value: dict[str, Any]) -> BlockRef:
    fields = decode_struct(value, "erased", {
        "blockNumber": _block_number_field,
        "blockHash": hash32,
        "requireCanonical": boolean,
    })
    number, block_hash = fields.get("blockNumber"), fields.get("blockHash")
    if number is not None and block_hash is not None:
        raise ArgumentError("cannot specify both BlockHash and BlockNumber, choose one or the other")
    return BlockRef(number=number, block_hash=block_hash,
                    require_canonical=bool(fields.get("requireCanonical", False)))


def _block_number_field(value: Any) -> BlockNumber | None:
    """A ``*BlockNumber`` field: null leaves it unset; errors are Go's raw ones."""
    if value is None:
        return None
    try:
        return block_number(value)
    except ArgumentError as error:
        # A plain error from UnmarshalJSON aborts the struct; geth then retries
        # the whole object as a string, so only "object into string" is seen.
        raise TypeMismatch(str(error), "rpc.BlockNumber") from None
