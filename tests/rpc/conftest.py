"""Shared fixtures: the rpc-compat chain, a dev chain with contracts, a served RPC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from aiohttp import web
from eth.db.atomic import AtomicDB

from chain.importer import import_chain
from rpc.cors import BrowserAccess
from rpc.frontdoor import FrontDoorRunner
from rpc.http import make_app
from rpc.service import RpcService
from tests.rpc.compat import SUITE, CaseResult, pass_table

COMPAT_RESULTS: list[CaseResult] = []
"""Filled by the conformance test; printed as a per-method table at the end of the run."""


class RecordingSink:
    """A transaction sink that keeps what it is given."""

    def __init__(self) -> None:
        self.submitted: list[tuple[bytes, bytes, bytes]] = []

    async def submit(self, raw_transaction: bytes, tx_hash: bytes, sender: bytes) -> None:
        self.submitted.append((raw_transaction, tx_hash, sender))


@pytest.fixture(scope="session")
def compat_db() -> AtomicDB:
    """The rpc-compat chain (45 blocks, all forks to Prague), imported once per run."""
    db = AtomicDB()
    import_chain(db, SUITE / "genesis.json", SUITE / "chain.rlp")
    return db


@pytest.fixture
def compat_service(compat_db: AtomicDB) -> RpcService:
    return RpcService(compat_db, tx_sink=RecordingSink())


async def listen(runner: web.BaseRunner) -> str:
    """Set ``runner`` up on a free loopback port; returns its url."""
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"http://127.0.0.1:{port}/"


async def serve(service: RpcService) -> tuple[web.AppRunner, str]:
    """Serve ``service`` on a free loopback port, through its front door as deployed; returns (runner, url)."""
    runner = FrontDoorRunner(make_app(service), service, BrowserAccess())
    return runner, await listen(runner)


@asynccontextmanager
async def listening(runner: web.BaseRunner) -> AsyncIterator[str]:
    """``runner`` on a free loopback port (its url) until the block ends."""
    try:
        yield await listen(runner)
    finally:
        await runner.cleanup()


@pytest.fixture
async def compat_url(compat_service: RpcService) -> AsyncIterator[str]:
    async with listening(FrontDoorRunner(make_app(compat_service), compat_service, BrowserAccess())) as url:
        yield url


Call = Callable[..., Any]


def caller(service: RpcService) -> Call:
    """``await call(method, *params)`` → the decoded response object (dispatcher only)."""

    async def call(method: str, *params: Any, request_id: Any = 1) -> Any:
        body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)})
        response = await service.handle_body(body)
        return None if response is None else orjson.loads(response)

    return call


@pytest.fixture
def compat_call(compat_service: RpcService) -> Call:
    return caller(compat_service)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if COMPAT_RESULTS:
        terminalreporter.section("rpc-compat conformance (hive rules; strict = messages too)")
        terminalreporter.write_line(pass_table(COMPAT_RESULTS))



