"""Transactions on their way to the sink, by hash: a resend joins the first send.

A wallet that timed out waiting sends the same transaction again, typically while the
first copy is still on its way: a version-0 blob sidecar being converted after Osaka (a
third to half a second a blob in the KZG worker), or its record waiting for the broker's
acknowledgement. The resend is answered like the first copy (its hash, or its error) as
soon as that is known, instead of being checked and converted again.

A copy goes in flight only once its checks passed: a sidecar is not part of the
transaction's hash, so a forged copy of a valid transaction must never answer for it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Coroutine


class InFlight:
    """The first send of each transaction under way, by transaction hash."""

    def __init__(self) -> None:
        self._first: dict[bytes, asyncio.Task[None]] = {}

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._first

    async def join(self, tx_hash: bytes) -> None:
        """Wait for the first send of ``tx_hash`` (which is under way); its error is raised here."""
        await asyncio.shield(self._first[tx_hash])

    async def send_once(self, tx_hash: bytes, send: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """``send()`` as the first send of ``tx_hash``, unless one is under way already: then join it.

        The send runs as a task of its own, to its end even if its caller goes away (a client
        that hung up), so the copies that joined it always get its outcome.
        """
        if tx_hash not in self._first:
            first = asyncio.create_task(send())
            self._first[tx_hash] = first
            first.add_done_callback(lambda _: self._finished(tx_hash))
        await self.join(tx_hash)

    def _finished(self, tx_hash: bytes) -> None:
        first = self._first.pop(tx_hash)
        if not first.cancelled():
            first.exception()  # retrieved: a send whose caller went away must not log "never retrieved"
