"""Browsers: CORS on the JSON-RPC endpoint (geth's --http.corsdomain) and WebSocket origins (--ws.origins)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from eth.db.atomic import AtomicDB

from rpc.cors import BrowserAccess, default_ws_origins, rule_allows
from rpc.frontdoor import FrontDoorRunner
from rpc.http import make_app
from rpc.service import RpcService
from tests.rpc.conftest import listening

PAGE = "http://dapp.example:3000"
BLOCK_NUMBER = b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}'


async def serve(compat_db: AtomicDB, access: BrowserAccess | None, front_door: bool = True) -> AsyncIterator[str]:
    """A replica's port with ``access``'s rules: through its front door, or the application alone."""
    service = RpcService(compat_db)
    app = make_app(service, access=access)
    runner = FrontDoorRunner(app, service, access or BrowserAccess()) if front_door else web.AppRunner(app)
    async with listening(runner) as url:
        yield url


@pytest.fixture(params=[True, False], ids=["front door", "application"])
async def allowing(compat_db: AtomicDB, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    async for url in serve(compat_db, BrowserAccess.from_settings(PAGE, ""), request.param):
        yield url


async def post(url: str, origin: str | None) -> aiohttp.ClientResponse:
    headers = {"Content-Type": "application/json", **({"Origin": origin} if origin else {})}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=BLOCK_NUMBER, headers=headers) as response:
            await response.read()
            return response


async def test_an_allowed_origin_may_read_the_answer(allowing: str) -> None:
    response = await post(allowing, PAGE)
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert "Origin" in response.headers.getall("Vary")


async def test_another_origin_gets_no_cors_headers(allowing: str) -> None:
    response = await post(allowing, "http://evil.example")
    assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers


async def test_a_preflight_is_answered_with_geths_methods_and_the_asked_headers(allowing: str) -> None:
    headers = {"Origin": PAGE, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    async with aiohttp.ClientSession() as session:
        async with session.options(allowing, headers=headers) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == PAGE
            assert response.headers["Access-Control-Allow-Methods"] == "POST, GET"
            assert response.headers["Access-Control-Allow-Headers"] == "content-type"
            assert response.headers["Access-Control-Max-Age"] == "600"


async def test_a_wildcard_allows_every_origin(compat_db: AtomicDB) -> None:
    async for url in serve(compat_db, BrowserAccess.from_settings("*", "")):
        assert (await post(url, "http://anywhere.example")).headers["Access-Control-Allow-Origin"] == "*"


async def test_without_the_setting_no_cors_headers_are_sent(compat_db: AtomicDB) -> None:
    async for url in serve(compat_db, BrowserAccess()):
        assert "Access-Control-Allow-Origin" not in (await post(url, PAGE)).headers


def test_websocket_origins_follow_geths_rules() -> None:
    default = BrowserAccess()
    assert default.websocket_allowed(None)
    assert all(default.websocket_allowed(origin) for origin in default_ws_origins())
    assert not default.websocket_allowed(PAGE)
    configured = BrowserAccess.from_settings("", PAGE.upper())
    assert configured.websocket_allowed(PAGE) and not configured.websocket_allowed("http://localhost")
    assert BrowserAccess.from_settings("", "*").websocket_allowed("http://anywhere.example")


def test_a_websocket_origin_rule_matches_the_parts_it_names() -> None:
    assert rule_allows("http://localhost", "http://localhost:8080")
    assert rule_allows("localhost", "https://localhost")
    assert not rule_allows("http://localhost", "https://localhost")
    assert not rule_allows("http://localhost:3000", "http://localhost:3001")
    assert not rule_allows("http://localhost", "http://localhost.evil.example")


async def test_a_websocket_from_a_refused_origin_gets_403(allowing: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(allowing, headers={"Origin": "http://evil.example"})
    assert refused.value.status == 403
