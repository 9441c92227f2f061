"""The dispatcher and the HTTP endpoint answer odd and hostile input as geth does."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from rpc.dispatch import Method, merge_tables
from rpc.limits import RpcLimits
from rpc.service import RpcService
from tests.rpc.conftest import serve

CHAIN_ID = "0xc72dd9d5e883e"


async def body(service: RpcService, raw: bytes | str) -> object:
    response = await service.handle_body(raw.encode() if isinstance(raw, str) else raw)
    return None if response is None else orjson.loads(response)


async def test_parse_error_answers_32700_with_null_id(compat_service: RpcService) -> None:
    assert await body(compat_service, '{"jsonrpc":"2.0","id":1,') == {
        "jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}


async def test_request_without_method_is_invalid_request_echoing_id(compat_service: RpcService) -> None:
    assert await body(compat_service, '{"jsonrpc":"2.0","id":7}') == {
        "jsonrpc": "2.0", "id": 7, "error": {"code": -32600, "message": "invalid request"}}


async def test_wrong_version_is_invalid_request(compat_service: RpcService) -> None:
    response = await body(compat_service, '{"jsonrpc":"1.0","id":7,"method":"eth_chainId"}')
    assert response["error"]["code"] == -32600  # type: ignore[index]


async def test_non_object_request_is_invalid_request_with_null_id(compat_service: RpcService) -> None:
    assert await body(compat_service, "42") == {
        "jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}


async def test_unknown_method_is_32601_naming_it(compat_service: RpcService) -> None:
    response = await body(compat_service, '{"jsonrpc":"2.0","id":1,"method":"eth_nope"}')
    assert response["error"] == {  # type: ignore[index]
        "code": -32601, "message": "the method eth_nope does not exist/is not available"}


async def test_subscribe_over_http_is_not_supported(compat_service: RpcService) -> None:
    response = await body(compat_service, '{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}')
    assert response["error"] == {"code": -32601, "message": "notifications not supported"}  # type: ignore[index]


async def test_bad_argument_is_32602_with_position(compat_service: RpcService) -> None:
    response = await body(compat_service, '{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["1",true]}')
    assert response["error"] == {  # type: ignore[index]
        "code": -32602, "message": "invalid argument 0: hex string without 0x prefix"}


async def test_missing_required_argument_is_32602(compat_service: RpcService) -> None:
    response = await body(compat_service, '{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x1"]}')
    assert response["error"]["message"] == "missing value for required argument 1"  # type: ignore[index]


async def test_too_many_arguments_is_32602(compat_service: RpcService) -> None:
    response = await body(compat_service, '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[1]}')
    assert response["error"]["message"] == "too many arguments, want at most 0"  # type: ignore[index]


async def test_object_params_are_non_array_args(compat_service: RpcService) -> None:
    response = await body(compat_service, '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":{}}')
    assert response["error"] == {"code": -32602, "message": "non-array args"}  # type: ignore[index]


async def test_notification_gets_no_response(compat_service: RpcService) -> None:
    assert await body(compat_service, '{"jsonrpc":"2.0","method":"eth_chainId"}') is None


async def test_explicit_null_id_is_a_call_not_a_notification(compat_service: RpcService) -> None:
    response = await body(compat_service, '{"jsonrpc":"2.0","id":null,"method":"eth_chainId"}')
    assert response == {"jsonrpc": "2.0", "id": None, "result": CHAIN_ID}


async def test_batch_answers_each_call_in_order_and_skips_notifications(compat_service: RpcService) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_nope"},
        {"jsonrpc": "2.0", "id": 3},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_getBalance", "params": ["0x1"]},
        5,
    ]
    response = await body(compat_service, orjson.dumps(batch))
    assert response == [
        {"jsonrpc": "2.0", "id": 1, "result": CHAIN_ID},
        {"jsonrpc": "2.0", "id": 2, "error": {"code": -32601, "message": "the method eth_nope does not exist/is not available"}},
        {"jsonrpc": "2.0", "id": 3, "error": {"code": -32600, "message": "invalid request"}},
        {"jsonrpc": "2.0", "id": 4, "error": {"code": -32602, "message": "invalid argument 0: json: cannot unmarshal hex string of odd length into Go value of type common.Address"}},
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}},
    ]


async def test_batch_of_notifications_gets_no_response(compat_service: RpcService) -> None:
    assert await body(compat_service, '[{"jsonrpc":"2.0","method":"eth_chainId"}]') is None


async def test_empty_batch_is_a_single_invalid_request(compat_service: RpcService) -> None:
    assert await body(compat_service, "[]") == {
        "jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "empty batch"}}


async def test_oversized_batch_is_refused_with_first_call_id(compat_db: object) -> None:
    service = RpcService(compat_db, limits=RpcLimits(max_batch_requests=2))  # type: ignore[arg-type]
    batch = [{"jsonrpc": "2.0", "id": n, "method": "eth_chainId"} for n in (5, 6, 7)]
    assert await body(service, orjson.dumps(batch)) == [
        {"jsonrpc": "2.0", "id": 5, "error": {"code": -32600, "message": "batch too large"}}]


async def test_batch_response_over_limit_fails_remaining_calls(compat_db: object) -> None:
    service = RpcService(compat_db, limits=RpcLimits(max_batch_response_bytes=100))  # type: ignore[arg-type]
    batch = [{"jsonrpc": "2.0", "id": n, "method": "eth_getBlockByNumber", "params": ["0x1", False]}
             for n in (1, 2)]
    response = await body(service, orjson.dumps(batch))
    assert response[0]["result"]["number"] == "0x1"  # type: ignore[index]
    assert response[1] == {"jsonrpc": "2.0", "id": 2, "error": {"code": -32003, "message": "response too large"}}  # type: ignore[index]


async def test_big_integer_id_is_echoed_exactly(compat_service: RpcService) -> None:
    raw = await compat_service.handle_body(b'{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"eth_chainId"}')
    assert raw is not None and raw.startswith(b'{"jsonrpc":"2.0","id":123456789012345678901234567890,')


async def test_unready_replica_answers_every_call_with_the_reason(compat_db: object) -> None:
    service = RpcService(compat_db, readiness=lambda: "catching up (lag 12 records)")  # type: ignore[arg-type]
    response = await body(service, '{"jsonrpc":"2.0","id":1,"method":"web3_clientVersion"}')
    assert response["error"] == {"code": -32000, "message": "replica not ready: catching up (lag 12 records)"}  # type: ignore[index]


async def test_crashing_handler_is_32603_without_traceback(compat_db: object) -> None:
    def explode(backend: object) -> None:
        raise ZeroDivisionError("secret internals")

    service = RpcService(compat_db, extra_methods=[{"test_explode": Method(explode)}])  # type: ignore[arg-type]
    response = await body(service, '{"jsonrpc":"2.0","id":9,"method":"test_explode"}')
    assert response == {"jsonrpc": "2.0", "id": 9, "error": {"code": -32603, "message": "method handler crashed"}}


def test_duplicate_wire_names_are_refused() -> None:
    with pytest.raises(ValueError, match="eth_chainId"):
        merge_tables({"eth_chainId": Method(lambda b: 1)}, {"eth_chainId": Method(lambda b: 2)})


# --- HTTP -------------------------------------------------------------------------------


async def test_http_post_serves_json_rpc(compat_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(compat_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}) as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            assert await response.json() == {"jsonrpc": "2.0", "id": 1, "result": CHAIN_ID}


async def test_http_body_over_limit_is_413(compat_db: object) -> None:
    service = RpcService(compat_db, limits=RpcLimits(max_body_bytes=1000))  # type: ignore[arg-type]
    runner, url = await serve(service)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=b"[" + b" " * 2000 + b"]",
                                    headers={"Content-Type": "application/json"}) as response:
                assert response.status == 413
                assert await response.text() == "content length too large (2002>1000)\n"
    finally:
        await runner.cleanup()


async def test_http_chunked_body_over_limit_is_413(compat_db: object) -> None:
    service = RpcService(compat_db, limits=RpcLimits(max_body_bytes=1000))  # type: ignore[arg-type]
    runner, url = await serve(service)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(5):
            yield b" " * 500

    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=chunks(), headers={"Content-Type": "application/json"}) as response:
                assert response.status == 413
    finally:
        await runner.cleanup()


async def test_http_wrong_content_type_is_415(compat_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(compat_url, data=b"{}", headers={"Content-Type": "text/plain"}) as response:
            assert response.status == 415
            assert await response.text() == "invalid content type, only application/json is supported\n"


async def test_http_bare_get_is_an_empty_200_for_health_probes(compat_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(compat_url) as response:
            assert response.status == 200
            assert await response.read() == b""


async def test_http_notification_gets_an_empty_200(compat_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(compat_url, json={"jsonrpc": "2.0", "method": "eth_chainId"}) as response:
            assert response.status == 200
            assert await response.read() == b""


async def test_every_call_of_a_batch_is_reported_with_its_status(compat_db: object) -> None:
    calls: list[tuple[str, str]] = []
    service = RpcService(compat_db, on_call=lambda method, status, seconds: calls.append((method, status)))  # type: ignore[arg-type]
    await body(service, '[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"nope_nope"}]')
    assert calls == [("eth_chainId", "ok"), ("nope_nope", "-32601")]


async def test_deeply_nested_body_answers_32700_naming_the_limit(compat_service: RpcService) -> None:
    response = await body(compat_service, b"[" * 70_000)
    assert response == {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32700, "message": "parse error: JSON nested deeper than 1024 levels (at least 70000)"}}


def crashing_service(compat_db: object) -> RpcService:
    def crash(backend: object, *args: object) -> None:
        raise KeyError("a bug")

    return RpcService(compat_db, extra_methods=[{"test_crash": Method(crash)}])  # type: ignore[arg-type]


async def test_a_crash_is_logged_with_its_traceback_once_per_window_for_many_requests(
        compat_db: object, caplog: pytest.LogCaptureFixture) -> None:
    service = crashing_service(compat_db)
    for request_id in range(50):
        response = await body(service, f'{{"jsonrpc":"2.0","id":{request_id},"method":"test_crash"}}')
        assert response["error"] == {"code": -32603, "message": "method handler crashed"}  # type: ignore[index]
    crashes = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert len(crashes) == 1 and crashes[0].exc_info is not None


async def test_the_next_crash_logged_after_the_window_counts_the_repeats(
        compat_db: object, caplog: pytest.LogCaptureFixture) -> None:
    service = crashing_service(compat_db)
    now = [0.0]
    service.dispatcher.crashes.clock = lambda: now[0]
    for _ in range(5):
        await body(service, '{"jsonrpc":"2.0","id":1,"method":"test_crash"}')
    now[0] = 11.0
    await body(service, '{"jsonrpc":"2.0","id":2,"method":"test_crash"}')
    crashes = [r.getMessage() for r in caplog.records if "crashed" in r.getMessage()]
    assert crashes == ["JSON-RPC test_crash (id 1) crashed",
                       "JSON-RPC test_crash (id 2) crashed [4 more like this in the last 11s]"]


async def test_requests_over_the_in_flight_bound_are_refused_at_once_with_503_and_retry_after(compat_db: object) -> None:
    release = asyncio.Event()

    async def slow(backend: object) -> str:
        await release.wait()
        return "done"

    service = RpcService(compat_db, limits=RpcLimits(max_in_flight=2),  # type: ignore[arg-type]
                         extra_methods=[{"test_slow": Method(slow)}])
    runner, url = await serve(service)
    request = {"jsonrpc": "2.0", "id": 1, "method": "test_slow"}
    try:
        async with aiohttp.ClientSession() as session:
            held = [asyncio.ensure_future(session.post(url, json=request)) for _ in range(2)]
            await asyncio.sleep(0.2)  # both reach the handler and wait there
            async with session.post(url, json=request) as refused:
                assert refused.status == 503 and refused.headers["Retry-After"] == "1"
                assert (await refused.json())["error"] == {
                    "code": -32005, "message": "server busy (2 requests in flight), retry shortly"}
            release.set()
            for task in held:
                async with await task as answered:
                    assert (await answered.json())["result"] == "done"
            async with session.post(url, json=request) as after:
                assert (await after.json())["result"] == "done"
        assert service.admission.shed == 1
    finally:
        await runner.cleanup()
