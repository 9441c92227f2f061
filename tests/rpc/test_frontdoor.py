"""The front door of an RPC port: plain JSON-RPC posts are answered off the socket; the first
request of any other kind hands the connection, from that request on, to the aiohttp application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import NamedTuple

import orjson
import pytest
import uvloop
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpc.cors import BrowserAccess
from rpc.frontdoor import BODY_LIMIT, HEAD_LIMIT, KEEPALIVE_TIMEOUT, MORE, FrontDoorRunner, PlainPost, plain_post
from rpc.service import RpcService
from tests.rpc.conftest import listen, listening

CHAIN_ID = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
PAGE = "https://dapp.example"
PREFLIGHT = f"OPTIONS / HTTP/1.1\r\nHost: node\r\nOrigin: {PAGE}\r\nAccess-Control-Request-Method: POST\r\n\r\n".encode()


def post(body: bytes = CHAIN_ID, path: str = "/", version: str = "1.1", **headers: str) -> bytes:
    """A raw HTTP request: the headers a JSON-RPC client sends, and ``headers`` (``Content_Type="..."``;
    an empty value leaves that header out)."""
    fields = {"Host": "node", "Content-Type": "application/json", "Content-Length": str(len(body))}
    fields.update({name.replace("_", "-"): value for name, value in headers.items()})
    lines = [f"POST {path} HTTP/{version}"] + [f"{name}: {value}" for name, value in fields.items() if value]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- recognising a plain post -------------------------------------------------------------


def test_a_json_rpc_clients_post_is_plain() -> None:
    request = post()
    found = plain_post(request, 0)
    assert isinstance(found, PlainPost)
    assert (found.body, found.end, found.close) == (CHAIN_ID, len(request), False)


def test_a_post_read_from_the_middle_of_a_buffer_ends_where_its_body_ends() -> None:
    first, second = post(b"[1]"), post(b"[22]")
    found = plain_post(first + second, len(first))
    assert isinstance(found, PlainPost) and (found.body, found.end) == (b"[22]", len(first + second))


@pytest.mark.parametrize("cut", [1, 10, 40, -1])
def test_a_post_not_all_here_asks_for_more(cut: int) -> None:
    request = post()
    assert plain_post(request[:cut], 0) == MORE


def test_a_post_from_a_page_or_a_wallet_is_plain_with_its_origin() -> None:
    found = plain_post(post(Origin="chrome-extension://wallet"), 0)
    assert isinstance(found, PlainPost) and found.origin == "chrome-extension://wallet"


def test_a_close_asked_for_is_noted() -> None:
    found = plain_post(post(Connection="keep-alive, Close"), 0)
    assert isinstance(found, PlainPost) and found.close


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json-rpc",
                                          "application/jsonrequest"])
def test_every_content_type_geth_accepts_for_json_is_plain(content_type: str) -> None:
    assert isinstance(plain_post(post(Content_Type=content_type), 0), PlainPost)


@pytest.mark.parametrize("request_bytes", [
    post(path="/status"),
    post(path="/?a=1"),
    post(version="1.0"),
    b"GET / HTTP/1.1\r\nHost: node\r\n\r\n",
    b"OPTIONS / HTTP/1.1\r\nHost: node\r\n\r\n",
    post(Upgrade="websocket"),
    post(Transfer_Encoding="chunked"),
    post(Expect="100-continue"),
    post(Content_Length=""),
    post(Content_Length="+60"),
    post(Content_Type=""),
    post(Content_Type="text/plain"),
    post().replace(b"Host: node", b"Content-Length: 60"),
    post(Origin="https://dapp.example").replace(b"Host: node", b"Origin: https://evil.example"),
    post().replace(b"Host: node", b"Host : node"),
    post().replace(b"Host: node", b"Host: node\r\n folded"),
    post().replace(b"Host: node", b"Ho\x00st: node"),
    post(b"x" * (BODY_LIMIT + 1)),
    post(X_Padding="p" * HEAD_LIMIT),
], ids=["path", "query", "http/1.0", "get", "options", "upgrade", "chunked", "expect", "no length",
        "signed length", "no content type", "text", "two lengths", "two origins", "space before colon", "folded line",
        "odd header name", "large body", "long head"])
def test_anything_else_is_not_plain(request_bytes: bytes) -> None:
    assert plain_post(request_bytes, 0) is None


def test_a_head_longer_than_the_limit_is_not_plain_before_it_ends() -> None:
    assert plain_post(post(X_Padding="p" * HEAD_LIMIT)[:HEAD_LIMIT + 10], 0) is None


def test_bytes_that_cannot_start_a_post_are_not_plain_before_they_end() -> None:
    assert plain_post(b"GET /", 0) is None


# --- serving: the front door and the application behind it ----------------------------------


class Response(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


async def read_response(reader: asyncio.StreamReader) -> Response:
    status = int((await reader.readline()).split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(status, headers, await reader.readexactly(int(headers["content-length"])))


async def exchange(url: str, raw: bytes, answers: int) -> tuple[list[Response], asyncio.StreamReader]:
    """Send ``raw`` on one connection; returns the first ``answers`` responses and the reader."""
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(raw)
    responses = [await asyncio.wait_for(read_response(reader), 10) for _ in range(answers)]
    return responses, reader


def served_by(response: Response) -> str:
    return "application" if response.body == b"application" else "front door"


def door(service: RpcService, keepalive_timeout: float = KEEPALIVE_TIMEOUT) -> FrontDoorRunner:
    """``service`` behind a front door, before an application answering "application" to everything."""

    async def application(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="application")

    app = web.Application(client_max_size=service.limits.max_body_bytes)
    app.router.add_route("*", "/{tail:.*}", application)
    return FrontDoorRunner(app, service, BrowserAccess.from_settings(PAGE, ""), keepalive_timeout=keepalive_timeout)


@pytest.fixture
async def door_url(compat_service: RpcService) -> AsyncIterator[str]:
    async with listening(door(compat_service)) as url:
        yield url


async def test_a_plain_post_is_answered_by_the_front_door_with_the_replicas_head(door_url: str) -> None:
    [response], _ = await exchange(door_url, post(), 1)
    assert response.status == 200 and orjson.loads(response.body) == {"jsonrpc": "2.0", "id": 1, "result": "0xc72dd9d5e883e"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-ethercattle-head"] == "45" and "date" in response.headers


@pytest.mark.parametrize(("origin", "cors"), [(PAGE, {"access-control-allow-origin": PAGE, "vary": "Origin"}),
                                              ("https://evil.example", {"vary": "Origin"}), (None, {})])
async def test_a_post_with_an_origin_is_answered_by_the_front_door_with_the_cors_rules(
        door_url: str, origin: str | None, cors: dict[str, str]) -> None:
    [response], _ = await exchange(door_url, post(Origin=origin or ""), 1)
    assert served_by(response) == "front door"
    assert {name: value for name, value in response.headers.items() if name in ("access-control-allow-origin", "vary")} == cors


@pytest.mark.parametrize("request_bytes", [PREFLIGHT, post(path="/?a=1"),
                                           b"GET /status HTTP/1.1\r\nHost: node\r\n\r\n", post(b" " * BODY_LIMIT + CHAIN_ID)])
async def test_any_other_request_is_the_applications(door_url: str, request_bytes: bytes) -> None:
    [response], _ = await exchange(door_url, request_bytes, 1)
    assert served_by(response) == "application"


async def test_pipelined_posts_are_answered_in_order(compat_service: RpcService, monkeypatch: pytest.MonkeyPatch) -> None:
    bodies = [orjson.dumps({"jsonrpc": "2.0", "id": n, "method": "eth_chainId"}) for n in range(5)]
    async with listening(door(slowed(compat_service, monkeypatch))) as url:
        responses, _ = await exchange(url, b"".join(post(body) for body in bodies), 5)
    assert [orjson.loads(response.body)["id"] for response in responses] == list(range(5))


async def test_after_another_request_the_connection_is_the_applications_in_order(
        compat_service: RpcService, monkeypatch: pytest.MonkeyPatch) -> None:
    async with listening(door(slowed(compat_service, monkeypatch))) as url:
        responses, _ = await exchange(url, post() + PREFLIGHT + post(), 3)
    assert [served_by(response) for response in responses] == ["front door", "application", "application"]


async def test_a_post_arriving_a_byte_at_a_time_is_answered(door_url: str) -> None:
    host, port = door_url.removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    for byte in post():
        writer.write(bytes([byte]))
        await writer.drain()
    response = await asyncio.wait_for(read_response(reader), 10)
    assert served_by(response) == "front door" and response.status == 200


async def test_a_post_asking_to_close_is_answered_then_closed(door_url: str) -> None:
    [response], reader = await exchange(door_url, post(Connection="close") + post(), 1)
    assert response.headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 10) == b""


async def test_a_large_answer_arrives_whole(door_url: str) -> None:
    batch = orjson.dumps([{"jsonrpc": "2.0", "id": n, "method": "eth_getBlockByNumber", "params": [hex(n), True]}
                          for n in range(1, 45)])
    [response], _ = await exchange(door_url, post(batch), 1)
    assert len(response.body) > 64 * 1024 and len(orjson.loads(response.body)) == 44


async def test_a_fault_answering_a_post_is_a_500_and_the_port_serves_on(compat_service: RpcService,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    async def crash(body: bytes) -> bytes:
        raise RuntimeError("a bug")

    async with listening(door(compat_service)) as url:
        with monkeypatch.context() as patch:
            patch.setattr(compat_service.dispatcher, "handle_body", crash)
            [failed], reader = await exchange(url, post(), 1)
            assert await asyncio.wait_for(reader.read(), 10) == b""
        [served], _ = await exchange(url, post(), 1)
    assert failed.status == 500 and served.status == 200


async def test_a_call_runs_to_its_end_when_its_client_leaves(compat_service: RpcService,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    finished = asyncio.Event()

    async def slow(body: bytes) -> bytes:
        await asyncio.sleep(0.2)
        finished.set()
        return b"{}"

    monkeypatch.setattr(compat_service.dispatcher, "handle_body", slow)
    async with listening(door(compat_service)) as url:
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(post())
        await asyncio.sleep(0.05)
        writer.close()
        await asyncio.wait_for(finished.wait(), 10)


@pytest.mark.parametrize("raw", [b"", post()[:30]], ids=["idle", "partly sent"])
async def test_a_connection_without_a_request_is_closed_after_the_keepalive_timeout(compat_service: RpcService,
                                                                                     raw: bytes) -> None:
    async with listening(door(compat_service, keepalive_timeout=0.3)) as url:
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(raw)
        assert await asyncio.wait_for(reader.read(), 10) == b""


async def test_stopping_the_server_closes_its_connections(compat_service: RpcService) -> None:
    runner = door(compat_service)
    [_], reader = await exchange(await listen(runner), post(), 1)
    await runner.cleanup()
    assert await asyncio.wait_for(reader.read(), 10) == b""


def test_the_connection_is_handed_over_on_uvloop_too(compat_service: RpcService) -> None:
    async def scenario() -> list[str]:
        async with listening(door(compat_service)) as url:
            responses, _ = await exchange(url, post() + b"GET /status HTTP/1.1\r\nHost: node\r\n\r\n" + post(), 3)
            return [served_by(response) for response in responses]

    assert uvloop.run(scenario()) == ["front door", "application", "application"]


# --- any bytes: answers in order, the port never stops -------------------------------------

json_bodies = st.lists(st.sampled_from(["eth_chainId", "eth_blockNumber", "net_version"]), min_size=1, max_size=3).map(
    lambda methods: orjson.dumps([{"jsonrpc": "2.0", "id": n, "method": name} for n, name in enumerate(methods)]))
plain_posts = st.builds(
    lambda body, content_type, extra: post(body, Content_Type=content_type, **extra), json_bodies,
    st.sampled_from(["application/json", "application/json; charset=UTF-8", "APPLICATION/JSON-RPC"]),
    st.sampled_from([{}, {"Connection": "keep-alive"}, {"X_Forwarded_For": "10.0.0.1"}, {"Accept": "*/*"}]))
other_requests = st.one_of(
    st.just(PREFLIGHT),
    json_bodies.map(lambda body: post(body, path="/status")),
    json_bodies.map(lambda body: post(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body), Content_Length="",
                                      Transfer_Encoding="chunked")),
    st.just(b"GET /status HTTP/1.1\r\nHost: node\r\n\r\n"),
)


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(raw) + 1) for cut in cuts} | {0, len(raw)})
    return [raw[start:end] for start, end in zip(points, points[1:])]


async def send_in_pieces(url: str, pieces: list[bytes]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0)
    return reader, writer


@pytest.fixture
def fuzz_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def slowed(service: RpcService, monkeypatch: pytest.MonkeyPatch) -> RpcService:
    """``service`` answering each body a few milliseconds late, as a call that reads the disk does:
    an answer written out of order would show."""
    handle_body = service.dispatcher.handle_body

    async def late(body: bytes) -> bytes | None:
        await asyncio.sleep(0.005)
        return await handle_body(body)

    monkeypatch.setattr(service.dispatcher, "handle_body", late)
    return service


@pytest.fixture
def fuzz_door(compat_service: RpcService, fuzz_loop: asyncio.AbstractEventLoop,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    runner = door(slowed(compat_service, monkeypatch))
    url = fuzz_loop.run_until_complete(listen(runner))
    yield url
    fuzz_loop.run_until_complete(runner.cleanup())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(st.one_of(plain_posts, plain_posts, other_requests), min_size=1, max_size=5),
       cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_any_mix_of_requests_in_any_pieces_is_answered_in_order(requests: list[bytes], cuts: list[int],
                                                                fuzz_door: str, fuzz_loop: asyncio.AbstractEventLoop) -> None:
    async def answers() -> list[str]:
        reader, writer = await send_in_pieces(fuzz_door, split(b"".join(requests), cuts))
        try:
            return [served_by(await asyncio.wait_for(read_response(reader), 10)) for _ in requests]
        finally:
            writer.close()

    handed_over_at = next((n for n, raw in enumerate(requests) if plain_post(raw, 0) is None), len(requests))
    assert fuzz_loop.run_until_complete(answers()) == (
        ["front door"] * handed_over_at + ["application"] * (len(requests) - handed_over_at))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.lists(plain_posts, max_size=2), garbage=st.binary(min_size=1, max_size=300),
       cuts=st.lists(st.integers(min_value=0), max_size=4))
def test_garbage_after_posts_never_stops_the_port(prefix: list[bytes], garbage: bytes, cuts: list[int], fuzz_door: str,
                                                  fuzz_loop: asyncio.AbstractEventLoop,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    async def garbage_then_a_clean_post() -> Response:
        reader, writer = await send_in_pieces(fuzz_door, split(b"".join(prefix) + garbage, cuts))
        for _ in prefix:
            await asyncio.wait_for(read_response(reader), 10)
        writer.close()
        [response], _ = await exchange(fuzz_door, post(), 1)
        return response

    response = fuzz_loop.run_until_complete(garbage_then_a_clean_post())
    assert served_by(response) == "front door" and response.status == 200
    assert not [record for record in caplog.records if record.name == "rpc.frontdoor"]
