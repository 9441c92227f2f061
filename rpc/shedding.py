"""Load shedding: a replica stays current first and refuses at once what it cannot serve.

At 256 concurrent clients (mixed reads and eth_call) and no bound, a replica fell
72-122 messages behind, commit-to-visible went from 27 ms to 2.2 s and 6.7% of
requests were refused as not ready: the RPC and the apply agent share one event loop
(and Python's GIL with the execution threads), and the RPC took it. ``Admission``
lets at most ``max_in_flight`` HTTP requests in, and none while the apply agent is
falling behind (the ``behind`` hook: the replica's lag past a quarter of ``MAX_LAG``), so
the replica turns busy before it turns unready. A refusal costs microseconds and says
to retry (HTTP 503, Retry-After, JSON-RPC -32005), which a load balancer or client
sends to another replica.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

from rpc.errors import Overloaded

Behind = Callable[[], "str | None"]
"""None while the apply agent keeps up; else why the RPC should step aside (e.g. the lag)."""


def never_behind() -> str | None:
    """The default hook: a standalone database has no log to keep up with."""
    return None


PAUSE_STEP = 0.01
"""Seconds an execution sleeps at a time while the apply agent is behind."""


def pause_while_behind(behind: Behind, deadline: float) -> None:
    """Sleep, releasing Python's GIL, while the apply agent is behind (never past ``deadline``).

    Executions run on worker threads that hold the GIL between switches: two of them busy
    with endless-loop eth_calls kept a replica 100 messages behind even with every new
    request shed. The EVM calls this every few milliseconds (``rpc.evmhooks``).
    """
    while behind() is not None and time.monotonic() < deadline:
        time.sleep(PAUSE_STEP)


class AdmittedRequest:
    """One admitted HTTP request, holding a place from its body's first byte to its response
    (a context manager), and the refusal of its call by a bound of its own, if one refused it
    after admission (``rpc.brokerwait``): the HTTP layer then answers a lone call as a shed one.

    A class with ``__enter__`` rather than a generator context manager: 0.5 against 1.6 us,
    paid by every request."""

    __slots__ = ("admission", "refused", "_token")

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.refused: Overloaded | None = None

    def __enter__(self) -> AdmittedRequest:
        self.admission.in_flight += 1
        self._token = self.admission.admitted.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.admission.admitted.reset(self._token)
        self.admission.in_flight -= 1


class Admission:
    """Counts HTTP requests in flight and refuses the ones over the bound, or all while behind."""

    def __init__(self, max_in_flight: int, behind: Behind = never_behind) -> None:
        self.max_in_flight = max_in_flight
        self.behind = behind
        self.in_flight = 0
        self.shed = 0
        """Requests refused so far (``ethercattle_rpc_shed`` on /metrics)."""
        self.admitted: ContextVar[AdmittedRequest | None] = ContextVar("admitted", default=None)
        """The running request, when it holds one of this admission's places."""

    def refusal(self) -> Overloaded | None:
        """The error for a request arriving now, or None to serve it."""
        reason: str | None
        if self.in_flight >= self.max_in_flight:
            reason = f"{self.max_in_flight} requests in flight"
        else:
            reason = self.behind()
        if reason is None:
            return None
        self.shed += 1
        return Overloaded(reason)

    def held(self) -> AdmittedRequest:
        """One admitted request's place (``with admission.held() as request:``)."""
        return AdmittedRequest(self)

    @contextmanager
    def stepped_aside(self) -> Iterator[None]:
        """The running request gives its place back while it waits on something that is not this
        process's work (the broker), and takes it again after, unchecked: it was admitted once.

        A request that holds no place (a WebSocket call) gives nothing back."""
        if self.admitted.get() is None:
            yield
            return
        self.in_flight -= 1
        try:
            yield
        finally:
            self.in_flight += 1

    def refused_inside(self, error: Overloaded) -> None:
        """A call of the running request was refused for load by a bound of its own (a WebSocket call
        belongs to no admitted request: nothing to note)."""
        request = self.admitted.get()
        if request is not None:
            request.refused = error


__all__ = ["Admission", "AdmittedRequest", "Behind", "never_behind", "pause_while_behind"]
