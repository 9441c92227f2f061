"""Argument decoding refuses bad input with go-ethereum's exact words."""

from __future__ import annotations

from typing import Any

import pytest

from rpc import params as p
from rpc.errors import InvalidParams
from rpc.blockref import BlockRef, BlockTag, block_number, block_ref


def error_of(decode: object, value: object) -> str:
    with pytest.raises(p.ArgumentError) as caught:
        decode(value)  # type: ignore[operator]
    return str(caught.value)


@pytest.mark.parametrize("text,expected", [
    ("0x0", 0), ("0x1f", 31), ("0xFFFFFFFFFFFFFFFF", 2**64 - 1), ("", 0),
])
def test_uint64_accepts_canonical_quantities(text: str, expected: int) -> None:
    assert p.uint64(text) == expected


@pytest.mark.parametrize("value,message", [
    ("1", "hex string without 0x prefix"),
    ("0x", 'hex string "0x"'),
    ("0x01", "hex number with leading zero digits"),
    ("0x1" + "0" * 16, "hex number > 64 bits"),
    ("0xzz", "invalid hex string"),
    ("-0x1", "hex string without 0x prefix"),
])
def test_uint64_refuses_malformed_quantities(value: str, message: str) -> None:
    assert error_of(p.uint64, value) == f"json: cannot unmarshal {message} into Go value of type hexutil.Uint64"


def test_quantity_given_as_json_number_is_non_string() -> None:
    assert error_of(p.uint64, 5) == "json: cannot unmarshal non-string into Go value of type hexutil.Uint64"


def test_big_refuses_more_than_256_bits() -> None:
    assert error_of(p.big, "0x1" + "0" * 64) == (
        "json: cannot unmarshal hex number > 256 bits into Go value of type *hexutil.Big")


def test_hash_of_wrong_length_is_reported_without_json_wrapper() -> None:
    assert error_of(p.hash32, "0x1234") == "hex string has length 4, want 64 for common.Hash"


def test_hash_without_prefix_matches_geth() -> None:
    assert error_of(p.hash32, "00" * 32) == (
        "json: cannot unmarshal hex string without 0x prefix into Go value of type common.Hash")


def test_bool_given_a_string_is_a_type_mismatch() -> None:
    assert error_of(p.boolean, "true") == "json: cannot unmarshal string into Go value of type bool"


@pytest.mark.parametrize("value,expected", [
    ("latest", BlockTag.LATEST), ("earliest", 0), ("pending", BlockTag.PENDING),
    ("safe", BlockTag.SAFE), ("finalized", BlockTag.FINALIZED), ("0x2a", 42),
])
def test_block_number_accepts_tags_and_quantities(value: str, expected: object) -> None:
    assert block_number(value) == expected


@pytest.mark.parametrize("value,message", [
    ("0x8000000000000000", "block number larger than int64"),
    ("0x10000000000000000", "hex number > 64 bits"),
    (12, "hex string without 0x prefix"),
    (None, "hex string without 0x prefix"),
    ("newest", "hex string without 0x prefix"),
])
def test_block_number_refuses_what_geth_refuses(value: object, message: str) -> None:
    assert error_of(block_number, value) == message


def test_block_ref_accepts_eip1898_objects() -> None:
    block_hash = "0x" + "ab" * 32
    assert block_ref({"blockHash": block_hash, "requireCanonical": True}) == BlockRef(
        block_hash=bytes.fromhex("ab" * 32), require_canonical=True)
    assert block_ref({"blockNumber": "0x5"}) == BlockRef(number=5)


def test_block_ref_refuses_both_hash_and_number() -> None:
    assert error_of(block_ref, {"blockNumber": "0x1", "blockHash": "0x" + "00" * 32}) == (
        "cannot specify both BlockHash and BlockNumber, choose one or the other")


def test_block_ref_with_malformed_field_is_reported_as_geth_retries_it_as_string() -> None:
    assert error_of(block_ref, {"blockHash": "0x12"}) == (
        "json: cannot unmarshal object into Go value of type string")


def test_block_ref_too_high_number() -> None:
    assert error_of(block_ref, "0xffffffffffffffff") == "blocknumber too high"


def test_struct_field_errors_name_the_go_struct_field() -> None:
    from rpc.callargs import call_args
    assert error_of(call_args, {"gas": "12"}) == (
        "json: cannot unmarshal hex string without 0x prefix into Go struct field "
        "TransactionArgs.gas of type hexutil.Uint64")


def test_struct_fields_match_case_insensitively_as_go() -> None:
    from rpc.callargs import call_args
    assert call_args({"GAS": "0x10"}).gas == 16


def test_hex_or_decimal_accepts_both() -> None:
    assert p.hex_or_decimal64("0x10") == 16
    assert p.hex_or_decimal64("10") == 10
    assert p.hex_or_decimal64(10) == 10
    assert error_of(p.hex_or_decimal64, "-1") == 'invalid hex or decimal integer "-1"'


def test_positional_arguments_prefix_the_index() -> None:
    specs: list[p.Param[Any]] = [p.required(p.address), p.required(block_ref)]
    with pytest.raises(InvalidParams) as caught:
        p.parse_positional(["0x" + "00" * 20, 7], specs)
    assert caught.value.message == "invalid argument 1: json: cannot unmarshal number into Go value of type string"


def test_optional_arguments_may_be_absent_or_null() -> None:
    specs: list[p.Param[Any]] = [p.required(p.address), p.optional(block_ref)]
    assert p.parse_positional(["0x" + "00" * 20], specs) == [bytes(20), None]
    assert p.parse_positional(["0x" + "00" * 20, None], specs) == [bytes(20), None]
