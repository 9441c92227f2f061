"""The worker's front door: plain JSON-RPC posts are answered before the web application."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from rpc.views import RpcFirstRunner
from tests.rpc.conftest import listen


async def _answer(text: str) -> web.Response:
    return web.Response(text=text)


@pytest.fixture
async def front_url() -> AsyncIterator[str]:
    """A server whose application answers "application" and whose front door answers "rpc"."""

    async def application(request: web.Request) -> web.Response:
        return await _answer("application")

    async def rpc(request: web.Request) -> web.Response:
        return await _answer("rpc")

    app = web.Application()
    app.router.add_post("/", application)
    app.router.add_get("/status", application)
    runner = RpcFirstRunner(app, rpc, access_log=None)
    try:
        yield (await listen(runner)).rstrip("/")
    finally:
        await runner.cleanup()


async def _post(url: str, **headers: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=b"{}", headers={"Content-Type": "application/json", **headers}) as response:
            return await response.text()


async def test_a_plain_post_to_the_root_is_answered_by_the_rpc(front_url: str) -> None:
    assert await _post(front_url + "/") == "rpc"


async def test_a_browser_post_goes_through_the_application_for_its_cors_rules(front_url: str) -> None:
    assert await _post(front_url + "/", Origin="https://dapp.example") == "application"


async def test_a_post_with_a_query_goes_through_the_application(front_url: str) -> None:
    assert await _post(front_url + "/?a=1") == "application"


async def test_other_pages_are_the_applications(front_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(front_url + "/status") as response:
            assert await response.text() == "application"
