"""The other clusters' summaries, asked over HTTP with a short timeout and kept briefly.

Peers come from settings only (``STATUS_PEERS``, NAME=URL): no request to this
replica names a URL, so nobody can make it fetch an arbitrary address, and
redirects are not followed. A peer is asked for ``/status/cluster.json``, which
describes its own cluster and never asks anyone else, so replicas whose pages
show each other cannot loop. Answers are bounded in size and nesting.

One round asks every peer at once (every URL of a cluster at once, the first
named that answers wins); page views that arrive meanwhile share the round, and
its result, failures included, is kept for ``STATUS_INTERVAL``: a peer that does
not answer costs one timeout per interval, never one per page view, and never
more than the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Callable

import aiohttp

from cluster import boundedjson
from cluster.settings import Settings
from replica.clusters import PeerAnswerError, Summary, peer_summary, unreachable

log = logging.getLogger("ethercattle.status")

CLUSTER_PATH = "/status/cluster.json"
"""Where a replica serves its own cluster's summary."""
MAX_ANSWER_BYTES = 1 << 20
"""Largest answer read from a peer."""


class PeerClusters:
    """The summaries of the clusters named in ``peers`` (name: its URLs), asked at most once per ``keep_for`` seconds.

    Arguments:
        peers: each peer cluster's name and the base URLs of its replicas, in the order to show them.
        timeout: longest one round waits for any peer, seconds.
        keep_for: how long a round's summaries are shown before the next page view asks again, seconds.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, peers: dict[str, list[str]], timeout: float, keep_for: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.peers = peers
        self.timeout = timeout
        self.keep_for = keep_for
        self.clock = clock
        self.rounds = 0
        """Rounds of asking the peers so far."""
        self._summaries: list[Summary] = []
        self._asked_at = -math.inf
        self._round: asyncio.Future[list[Summary]] | None = None
        self._reachable: dict[str, bool] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> "PeerClusters":
        return cls(settings.status_peer_urls, settings.status_peer_timeout, settings.status_interval)

    async def summaries(self) -> list[Summary]:
        """Every peer cluster's summary (``reachable: false`` with the error for those that did not answer)."""
        if not self.peers:
            return []
        if self.clock() - self._asked_at < self.keep_for:
            return self._summaries
        if self._round is None:
            self._round = asyncio.ensure_future(self._ask_all())
        return await asyncio.shield(self._round)  # a page view that goes away does not cancel the others' round

    async def _ask_all(self) -> list[Summary]:
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                self._summaries = list(await asyncio.gather(
                    *(self._ask_cluster(session, name, urls) for name, urls in self.peers.items())))
            self._asked_at = self.clock()
            self.rounds += 1
            return self._summaries
        finally:
            self._round = None

    async def _ask_cluster(self, session: aiohttp.ClientSession, cluster: str, urls: list[str]) -> Summary:
        answers = await asyncio.gather(*(self._ask(session, cluster, url) for url in urls), return_exceptions=True)
        summary = next((answer for answer in answers if isinstance(answer, dict)), None)
        if summary is None:
            summary = unreachable(cluster, "; ".join(f"{url}: {describe(answer)}" for url, answer in zip(urls, answers)))
        self._note(cluster, summary)
        return summary

    async def _ask(self, session: aiohttp.ClientSession, cluster: str, url: str) -> Summary:
        try:
            async with session.get(url + CLUSTER_PATH, allow_redirects=False) as response:
                if response.status != 200:
                    raise PeerAnswerError(f"HTTP {response.status} {response.reason or ''}".rstrip())
                body = bytearray()
                async for chunk in response.content.iter_any():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise PeerAnswerError(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
        except asyncio.TimeoutError:
            raise PeerAnswerError(f"no answer within {self.timeout:g} s") from None
        return peer_summary(cluster, boundedjson.loads(body))

    def _note(self, cluster: str, summary: Summary) -> None:
        """Log when a peer cluster stops or starts answering (not every round)."""
        reachable = bool(summary["reachable"])
        if self._reachable.get(cluster, True) != reachable:
            if reachable:
                log.info("status peer cluster %s answers again", cluster)
            else:
                log.warning("status peer cluster %s does not answer: %s", cluster, summary["error"])
        self._reachable[cluster] = reachable


def describe(error: object) -> str:
    """Why a peer did not answer, in an operator's words."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect ({error.os_error.strerror or error.os_error})"
    if isinstance(error, PeerAnswerError):
        return str(error)
    if isinstance(error, ValueError):
        return "the answer is not JSON"
    return str(error) or type(error).__name__
