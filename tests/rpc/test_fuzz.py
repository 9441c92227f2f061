"""Property tests: whatever arrives, every answer is a well-formed JSON-RPC response.

Random JSON, wrong types, huge and negative numbers, overflowing block numbers and
malformed hex go to every registered method, and every method of the execution-apis spec gets
valid and invalid params generated from its schemas (tests/rpc/spec.py); no input may crash a
handler (-32603), every error code is one the spec documents, every answer comes in time,
and raw garbage bodies must still get a JSON answer (or none), never an HTTP 500.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import orjson
import pytest
from eth.db.atomic import AtomicDB
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filters.methods import Filters
from rpc.errors import INTERNAL_ERROR
from rpc.limits import RpcLimits
from rpc.service import RpcService
from tests.filters.test_methods import Clock, store_with_log
from tests.rpc.conftest import RecordingSink, serve
from tests.rpc.spec import Spec

KNOWN_CODES = {-32700, -32600, -32601, -32602, -32000, -32002, -32003, 3}
HEX_CHARS = "0123456789abcdefABCDEFxg "

hex_strings = st.one_of(
    st.text(alphabet=HEX_CHARS, max_size=70),
    st.binary(max_size=40).map(lambda b: "0x" + b.hex()),
    st.integers(min_value=0, max_value=2**300).map(hex),
    st.integers(min_value=-(2**70), max_value=-1).map(lambda n: "-" + hex(-n)),
    st.sampled_from(["latest", "earliest", "pending", "safe", "finalized", "0x", "0x0", "0x00",
                     "0x8000000000000000", "0xffffffffffffffff", "0x10000000000000000",
                     "0x" + "00" * 20, "0x" + "00" * 32, "0x2d", "0x1"]),
)
scalars = st.one_of(
    st.none(), st.booleans(), hex_strings, st.text(max_size=20),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.floats(allow_nan=False, allow_infinity=False),
)
FIELDS = ["from", "to", "gas", "gasPrice", "maxFeePerGas", "value", "input", "data", "nonce",
          "accessList", "blockHash", "blockNumber", "fromBlock", "toBlock", "address", "topics",
          "requireCanonical", "code", "balance", "state", "stateDiff", "number", "authorizationList",
          "blobVersionedHashes", "chainId", "storageKeys", "time", "baseFeePerGas"]
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), hex_strings), children, max_size=4),
    ),
    max_leaves=12,
)
params_lists = st.lists(json_values, max_size=5)


@pytest.fixture(scope="module")
def fuzz_service(compat_db: AtomicDB) -> RpcService:
    """The rpc-compat chain with the filter methods over an in-memory filter store, executions bounded."""
    store, _ = store_with_log(Clock())
    limits = RpcLimits(call_gas_cap=1_000_000, call_timeout_seconds=1.0, request_timeout_seconds=1.0)
    return RpcService(compat_db, limits=limits, tx_sink=RecordingSink(), extra_methods=[Filters(store).methods()])


@pytest.fixture(scope="module")
def loop() -> Any:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def check_response(response: bytes | None, request_id: Any, codes: frozenset[int] = frozenset(KNOWN_CODES)) -> None:
    assert response is not None
    decoded = orjson.loads(response)
    assert decoded["jsonrpc"] == "2.0"
    assert decoded["id"] == request_id
    assert ("result" in decoded) != ("error" in decoded)
    if "error" in decoded:
        assert decoded["error"]["code"] in codes, decoded
        assert decoded["error"]["code"] != INTERNAL_ERROR, decoded
        assert isinstance(decoded["error"]["message"], str)


SPEC = Spec()
ANSWER_WITHIN = 3.0
"""Seconds any answer may take: executions stop at 1 s here (the request deadline)."""


def all_methods() -> list[str]:
    """Every method the replica serves and every method the spec names (those not served: -32601)."""
    return sorted(set(RpcService(AtomicDB(), extra_methods=[Filters(store_with_log(Clock())[0]).methods()]).methods)
                  | set(SPEC.methods))


def spec_params(method: str) -> st.SearchStrategy[list[Any]]:
    """Valid and invalid params from the spec's schemas; arbitrary JSON for methods it does not describe."""
    if method not in SPEC.methods:
        return params_lists
    return st.one_of(SPEC.valid_params(method), SPEC.invalid_params(method))


@pytest.mark.parametrize("method", all_methods())
def test_every_method_answers_spec_params_with_a_documented_code_in_time(
        method: str, fuzz_service: RpcService, loop: Any) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(params=spec_params(method))
    def check(params: list[Any]) -> None:
        started = time.monotonic()
        response = loop.run_until_complete(fuzz_service.handle_body(encode_request(method, params)))
        assert time.monotonic() - started < ANSWER_WITHIN, params
        check_response(response, 1, SPEC.error_codes)

    check()


def encode_request(method: str, params: Any) -> bytes:
    """A request body; the standard library encodes integers beyond orjson's 64 bits."""
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                     json_values.map(lambda v: encode_request("x", [v]))))
def test_any_body_gets_json_or_nothing(raw: bytes, fuzz_service: RpcService, loop: Any) -> None:
    response = loop.run_until_complete(fuzz_service.handle_body(raw))
    if response is not None:
        decoded = orjson.loads(response)
        assert isinstance(decoded, (dict, list))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages=st.lists(st.one_of(json_values, st.fixed_dictionaries({
    "jsonrpc": st.just("2.0"), "id": st.integers(0, 100),
    "method": st.sampled_from(["eth_getBalance", "eth_call", "eth_getLogs", "eth_getBlockByNumber"]),
    "params": params_lists})), max_size=6))
def test_any_batch_gets_one_answer_per_call(messages: list[Any], fuzz_service: RpcService, loop: Any) -> None:
    raw = json.dumps(messages).encode()
    response = loop.run_until_complete(fuzz_service.handle_body(raw))
    if response is not None:
        decoded = orjson.loads(response)
        for item in decoded if isinstance(decoded, list) else [decoded]:
            assert item["jsonrpc"] == "2.0"
            assert item.get("error", {}).get("code") != INTERNAL_ERROR


async def test_garbage_over_http_never_gets_a_500(fuzz_service: RpcService) -> None:
    runner, url = await serve(fuzz_service)
    bodies = [b"", b"{", b"[", b"\xff\xfe", b"null", b'"x"', b"[[[[[[]]]]]]", b"1e999", b"{" * 5000,
              b'{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0xffffffffffffffffff",true]}']
    try:
        async with aiohttp.ClientSession() as session:
            for body in bodies:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                    assert response.status == 200, body
    finally:
        await runner.cleanup()


# --- execution at every fork --------------------------------------------------------

KNOWN_ADDRESSES = [
    None, "0x" + "00" * 20, "0x7435ed30a8b4aeb0877cef0c6e8cffe834eb865f",
    "0x9344b07175800259691961298ca11c824e65032d", "0x17e7eedce4ac02ef114a7ed9fe6e2f33feba1667",
    "0x0ee3ab1371c93e7c0c281cc0c2107cdebc8b1930", "0x7dcd17433742f4c0ca53122ab541d0ba67fc27df",
    "0xeda8645ba6948855e3b3cd596bbb07596d59c603",
] + ["0x" + n.to_bytes(20, "big").hex() for n in range(1, 0x12)]
addresses = st.one_of(st.sampled_from(KNOWN_ADDRESSES), st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()))
quantities = st.one_of(st.integers(0, 2**64).map(hex), st.sampled_from(["0x0", "0x5208", "0x1", "0x3b9aca00"]))
hex_data = st.binary(max_size=80).map(lambda b: "0x" + b.hex())
base_calls = st.fixed_dictionaries({}, optional={
    "from": addresses, "to": addresses, "gas": quantities, "value": quantities,
    "input": hex_data, "nonce": quantities,
    "accessList": st.lists(st.fixed_dictionaries({"address": addresses.filter(bool), "storageKeys": st.lists(
        st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()), max_size=2)}), max_size=2),
})
fee_fields: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"gasPrice": quantities}),
    st.fixed_dictionaries({}, optional={"maxFeePerGas": quantities, "maxPriorityFeePerGas": quantities}),
)
blob_fields: st.SearchStrategy[dict[str, Any]] = st.one_of(st.just({}), st.just({}), st.just({}), st.fixed_dictionaries({
    "blobVersionedHashes": st.lists(st.binary(min_size=31, max_size=31).map(lambda b: "0x01" + b.hex()), max_size=2),
}, optional={"maxFeePerBlobGas": quantities}))
call_objects = st.builds(lambda base, fees, blobs: {**base, **fees, **blobs}, base_calls, fee_fields, blob_fields)
blocks = st.one_of(st.integers(0, 0x2d).map(hex), st.sampled_from(["latest", "earliest", "pending"]))
code_overrides = st.dictionaries(
    addresses.filter(bool),
    st.fixed_dictionaries({}, optional={"code": hex_data, "balance": quantities, "nonce": quantities}),
    max_size=2)


@pytest.fixture(scope="module")
def bounded_service(compat_db: AtomicDB) -> RpcService:
    from rpc.limits import RpcLimits
    return RpcService(compat_db, limits=RpcLimits(call_gas_cap=1_000_000, call_timeout_seconds=1.0))


@pytest.mark.parametrize("method", ["eth_call", "eth_estimateGas", "eth_createAccessList"])
def test_execution_at_any_block_never_crashes(method: str, bounded_service: RpcService, loop: Any) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(call=call_objects, block=blocks, overrides=st.one_of(st.none(), code_overrides))
    def check(call: dict[str, Any], block: str, overrides: dict[str, Any] | None) -> None:
        params: list[Any] = [call, block] if overrides is None else [call, block, overrides]
        check_response(loop.run_until_complete(bounded_service.handle_body(encode_request(method, params))), 1)

    check()


# --- reads with plausible arguments ---------------------------------------------------

KNOWN_HASHES = [
    "0xaf51811799f22260e5b4e1f95504dae760505f102dcb2e9ca7d897d8a40124a1",
    "0xbb198addc8a129024ed75dbe52a8c89a6baa97980c855241790439db182a210b",
    "0x30adf30837c967524cbcf881c024c194eee010b3750feef2e45a674979b2cd36",
    "0x16f6724ad864e7664c367893cae3e176d362bea3a47495cec3b246555a7228da",
    "0x6bcea0da8e703d3283c8f1124377a63023290cd188de3274d12441e15dc14794",
    "0xc1d605c6612a5fe84dc95810030bfe5b1d327652b381bc695e28f50d13b2b09e",
]
hashes = st.one_of(st.sampled_from(KNOWN_HASHES), st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()))
numbers = st.one_of(st.integers(0, 0x30).map(hex), st.sampled_from(["latest", "earliest", "pending", "safe", "finalized"]),
                    st.integers(0, 2**70).map(hex))
refs = st.one_of(numbers, hashes, st.fixed_dictionaries({"blockHash": hashes}, optional={"requireCanonical": st.booleans()}),
                 st.fixed_dictionaries({"blockNumber": numbers}))
indexes = st.integers(0, 12).map(hex)
slots = st.one_of(st.integers(0, 3).map(hex), hashes)
topics = st.lists(st.one_of(st.none(), hashes, st.lists(hashes, max_size=2)), max_size=3)
log_filters = st.one_of(
    st.fixed_dictionaries({}, optional={"fromBlock": numbers, "toBlock": numbers, "address": st.one_of(addresses, st.lists(addresses.filter(bool), max_size=2)), "topics": topics}),
    st.fixed_dictionaries({"blockHash": hashes}, optional={"topics": topics}),
)
PLAUSIBLE: dict[str, Any] = {
    "eth_getBlockByNumber": st.tuples(numbers, st.booleans()),
    "eth_getBlockByHash": st.tuples(hashes, st.booleans()),
    "eth_getBlockTransactionCountByNumber": st.tuples(numbers),
    "eth_getUncleByBlockNumberAndIndex": st.tuples(numbers, indexes),
    "eth_getUncleByBlockHashAndIndex": st.tuples(hashes, indexes),
    "eth_getBlockReceipts": st.tuples(refs),
    "debug_getRawBlock": st.tuples(refs),
    "debug_getRawReceipts": st.tuples(refs),
    "eth_getTransactionByHash": st.tuples(hashes),
    "eth_getTransactionReceipt": st.tuples(hashes),
    "eth_getTransactionByBlockNumberAndIndex": st.tuples(numbers, indexes),
    "eth_getRawTransactionByBlockHashAndIndex": st.tuples(hashes, indexes),
    "eth_getBalance": st.tuples(addresses.filter(bool), refs),
    "eth_getStorageAt": st.tuples(addresses.filter(bool), slots, refs),
    "eth_getProof": st.tuples(addresses.filter(bool), st.lists(slots, max_size=3), refs),
    "eth_getLogs": st.tuples(log_filters),
    "eth_feeHistory": st.tuples(st.one_of(st.integers(0, 2000), indexes), numbers,
                                st.lists(st.floats(-10, 110), max_size=4)),
}


@pytest.mark.parametrize("method", sorted(PLAUSIBLE))
def test_plausible_reads_never_crash(method: str, fuzz_service: RpcService, loop: Any) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(params=PLAUSIBLE[method])
    def check(params: tuple[Any, ...]) -> None:
        check_response(loop.run_until_complete(fuzz_service.handle_body(encode_request(method, list(params)))), 1)

    check()
