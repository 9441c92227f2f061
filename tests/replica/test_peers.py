"""Asking the peer clusters over real HTTP: answers, unreachable peers, the timeout, the brief cache."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from replica.clusters import cluster_summary
from replica.peers import CLUSTER_PATH, MAX_ANSWER_BYTES, PeerClusters

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def summary_of(cluster: str, ready: bool = True) -> dict[str, Any]:
    row = {"replica": "r1", "ready": ready, "stale": False, "head": 7, "master_head": 7, "lag": 0, "age": 0.1,
           "reason": None, "halted": None}
    return cluster_summary({"cluster": cluster, "replica": "r1", "now": 1.0, "replicas": [row],
                            "self": {"heartbeat_age": 0.2, "checks": [{"name": "heartbeat_age", "ok": True}]}})


@asynccontextmanager
async def peer(handler: Handler) -> AsyncIterator[str]:
    """A peer on a loopback port serving ``handler`` at the cluster summary's path; yields its base URL."""
    app = web.Application()
    app.router.add_get(CLUSTER_PATH, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def answering(cluster: str, asked: list[float] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if asked is not None:
            asked.append(time.monotonic())
        return web.json_response(summary_of(cluster))
    return handler


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


async def test_a_peer_that_answers_is_shown_with_its_summary() -> None:
    async with peer(answering("b")) as url:
        (summary,) = await PeerClusters({"b": [url]}, timeout=1.0, keep_for=2.0).summaries()
    assert summary == summary_of("b")


async def test_a_peer_nobody_listens_for_is_unreachable_with_the_reason() -> None:
    url = closed_port_url()
    (summary,) = await PeerClusters({"b": [url]}, timeout=1.0, keep_for=2.0).summaries()
    assert summary["reachable"] is False and summary["cluster"] == "b"
    assert summary["error"].startswith(f"{url}: cannot connect")


async def test_a_peer_that_hangs_is_unreachable_after_the_timeout_not_later() -> None:
    released = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await released.wait()
        return web.json_response(summary_of("b"))

    async with peer(hang) as url:
        started = time.monotonic()
        (summary,) = await PeerClusters({"b": [url]}, timeout=0.3, keep_for=2.0).summaries()
        took = time.monotonic() - started
        released.set()
    assert summary["reachable"] is False and "no answer within 0.3 s" in summary["error"]
    assert took < 1.0


async def test_one_peer_down_leaves_the_others_shown() -> None:
    async with peer(answering("b")) as b:
        summaries = await PeerClusters({"b": [b], "c": [closed_port_url()]}, timeout=1.0, keep_for=2.0).summaries()
    assert [(s["cluster"], s["reachable"]) for s in summaries] == [("b", True), ("c", False)]


async def test_the_first_url_of_a_cluster_that_answers_wins() -> None:
    async with peer(answering("b")) as b:
        (summary,) = await PeerClusters({"b": [closed_port_url(), b]}, timeout=1.0, keep_for=2.0).summaries()
    assert summary["reachable"] is True


async def test_a_url_that_reaches_another_cluster_is_shown_as_that_misconfiguration() -> None:
    async with peer(answering("c")) as url:
        (summary,) = await PeerClusters({"b": [url]}, timeout=1.0, keep_for=2.0).summaries()
    assert summary["reachable"] is False and "the answer is cluster 'c', not 'b'" in summary["error"]


async def test_redirects_are_not_followed() -> None:
    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async with peer(redirect) as url:
        (summary,) = await PeerClusters({"b": [url]}, timeout=1.0, keep_for=2.0).summaries()
    assert summary["reachable"] is False and "HTTP 302" in summary["error"]


async def test_an_oversized_answer_is_refused() -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b" " * (MAX_ANSWER_BYTES + 1), content_type="application/json")

    async with peer(huge) as url:
        (summary,) = await PeerClusters({"b": [url]}, timeout=2.0, keep_for=2.0).summaries()
    assert summary["reachable"] is False and "larger than" in summary["error"]


async def test_an_answer_nested_too_deep_is_refused_before_parsing() -> None:
    async def deep(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"[" * 70_000, content_type="application/json")

    async with peer(deep) as url:
        (summary,) = await PeerClusters({"b": [url]}, timeout=1.0, keep_for=2.0).summaries()
    assert summary["reachable"] is False and "not JSON" in summary["error"]


async def test_page_views_within_the_interval_share_one_round_of_asking() -> None:
    asked: list[float] = []
    clock = [100.0]
    async with peer(answering("b", asked)) as url:
        peers = PeerClusters({"b": [url]}, timeout=1.0, keep_for=2.0, clock=lambda: clock[0])
        await asyncio.gather(*(peers.summaries() for _ in range(5)))
        clock[0] += 1.9
        await peers.summaries()
        assert (len(asked), peers.rounds) == (1, 1)
        clock[0] += 0.2
        await peers.summaries()
    assert (len(asked), peers.rounds) == (2, 2)


async def test_an_unreachable_peer_is_kept_for_the_interval_too() -> None:
    clock = [100.0]
    peers = PeerClusters({"b": [closed_port_url()]}, timeout=1.0, keep_for=2.0, clock=lambda: clock[0])
    await peers.summaries()
    await peers.summaries()
    assert peers.rounds == 1


async def test_no_peers_means_no_asking() -> None:
    peers = PeerClusters({}, timeout=1.0, keep_for=2.0)
    assert await peers.summaries() == [] and peers.rounds == 0
