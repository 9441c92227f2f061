"""Calls whose answer waits on the broker have a bound of their own, apart from the request slots.

A filter call (``eth_newFilter`` ... ``eth_uninstallFilter``) answers once the broker
acknowledged its record on the filter topic, and most first wait until this replica has read
that topic to its end; ``eth_sendRawTransaction`` answers once the broker acknowledged the
transaction's record, and ``eth_sendRawTransactionSync`` then waits for its receipt; a
"pending" nonce waits until this replica has read the transaction topic to its end. Their
time is the broker's, not this process's: on the local broker (Tansu, memory storage) a fetch
at the end of the filter topic took 2.1 s (p50) after seven minutes of a soak's installs and
removals (``bench/brokertail.py`` measures it against the partition's length), and without a
bound of their own those calls held all ``RPC_MAX_IN_FLIGHT`` slots, so every read was shed:
305-647 answered req/s fell to 51-188 with lag 0 and the process a quarter idle
(``bench/soak.py``). A stranger sending eth_newFilter in a loop does the same on purpose.

So these calls have a bound of their own: while one runs it gives its request's place back
to the admission (``Admission.stepped_aside``), so reads keep every slot; at most
``max_waiting`` such calls (``RPC_MAX_BROKER_WAITING``, 64) run at once, and the next is
answered at once with -32005, saying what is full and to retry. Each wait for an
acknowledgement is bounded too (``RPC_BROKER_TIMEOUT``, ``BrokerTimeout``). A bound inside
the admission's places instead (a quarter of them, as ``BlockWait`` has) starved honest
pollers: eth_getFilterChanges waits one or two fetch waits for the filter topic (about
50 ms), so 4 places answered 75 polls/s where the 16 places had answered about 320.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager, nullcontext
from typing import Awaitable, Iterator, TypeVar

from eth.abc import SignedTransactionAPI

from rpc.backend import PendingView
from rpc.errors import Overloaded, ServerError
from rpc.shedding import Admission

T = TypeVar("T")


class BrokerTimeout(ServerError):
    """The broker did not acknowledge a call's record in time: the call did not take effect here,
    or not yet, and may be sent again."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"the broker did not acknowledge {what} within {seconds:g}s; retry shortly")


async def acknowledged(produced: Awaitable[T], what: str, seconds: float) -> T:
    """``produced``'s result once the broker acknowledged it, or ``BrokerTimeout`` after ``seconds``."""
    try:
        return await asyncio.wait_for(produced, seconds)
    except asyncio.TimeoutError:
        raise BrokerTimeout(what, seconds) from None


class BrokerWait:
    """Counts the calls waiting on the broker and refuses the ones past ``max_waiting``.

    Arguments:
        max_waiting: the most calls waiting on the broker at once.
        admission: the HTTP requests' admission: a waiting call gives its request's place back to it
            (``Admission.stepped_aside``), and a refused one is noted on its request
            (``Admission.refused_inside``), so that a lone call is answered as a shed request is (HTTP
            503, Retry-After and a pause) instead of inviting an immediate retry. None: neither.
    """

    def __init__(self, max_waiting: int, admission: Admission | None = None) -> None:
        self.max_waiting = max_waiting
        self.admission = admission
        self.waiting = 0
        """Calls holding a place now (``ethercattle_rpc_broker_waiting`` on /metrics)."""
        self.refused = 0
        """Calls refused because every place was taken (``ethercattle_rpc_broker_waits_refused``)."""
        self.max_long = max(1, max_waiting // 4)
        """The most places long calls may hold at once (see ``held``)."""
        self.long_waiting = 0

    @contextmanager
    def held(self, long: bool = False) -> Iterator[None]:
        """One call's place, from its start to its answer, instead of its request's; ``Overloaded``
        (-32005) when none is free.

        A ``long`` call keeps its place well past the broker's answer (eth_sendRawTransactionSync
        waits up to a minute for its receipt), so long calls share a quarter of the places: a
        stranger sending such calls for transactions that never get mined would otherwise hold
        every place for a minute at a time, and filters and sends would all be refused."""
        if self.waiting >= self.max_waiting:
            raise self._refuse(f"{self.max_waiting} calls already waiting on the broker "
                               "for filters, sent transactions or pending nonces")
        if long and self.long_waiting >= self.max_long:
            raise self._refuse(f"{self.max_long} sent transactions already waiting for their receipts")
        self.waiting += 1
        self.long_waiting += long
        try:
            with nullcontext() if self.admission is None else self.admission.stepped_aside():
                yield
        finally:
            self.waiting -= 1
            self.long_waiting -= long

    def _refuse(self, reason: str) -> Overloaded:
        self.refused += 1
        error = Overloaded(reason)
        if self.admission is not None:
            self.admission.refused_inside(error)
        return error


class PendingOnBroker:
    """A pending view whose catch-up with the transaction topic waits as a call waiting on the broker.

    A "pending" nonce (eth_getTransactionCount) first waits until this replica read the transaction
    topic to its end: one or two fetch waits, up to ``PENDING_SYNC_TIMEOUT``. That wait takes one of
    ``wait``'s places and gives the request's back meanwhile, as the filter calls do.
    """

    def __init__(self, view: PendingView, wait: BrokerWait) -> None:
        self.view = view
        self.wait = wait

    def get(self, tx_hash: bytes) -> tuple[SignedTransactionAPI, bytes] | None:
        return self.view.get(tx_hash)

    def next_nonce(self, sender: bytes, state_nonce: int) -> int:
        return self.view.next_nonce(sender, state_nonce)

    def transactions(self) -> list[tuple[SignedTransactionAPI, bytes]]:
        return self.view.transactions()

    async def sync(self) -> None:
        with self.wait.held():
            await self.view.sync()
