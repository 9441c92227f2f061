"""One emitter target: a JSON-RPC endpoint that takes ``eth_sendRawTransaction``.

Every way a send can fail is an ``EmitError`` that says whether it is
retriable. The rule: a JSON-RPC error object about the transaction is the
target's verdict on it (``TargetRejected``: nonce too low, insufficient funds,
invalid ...), except the few answers that say the target is busy or not ready;
anything that is about the target rather than the transaction (connection
refused, timeouts, HTTP 5xx/429, a body that is not JSON-RPC) is
``TargetUnavailable`` and is retried. "Already known" means the target has it:
that is a delivery, not an error.
"""

from __future__ import annotations

import asyncio
import re
from enum import Enum
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp

ALREADY_KNOWN = re.compile(r"already known|known transaction|already imported|already exists|already in (the )?(mem)?pool", re.I)
"""geth "already known", parity/nethermind "known transaction" / "AlreadyKnown", besu "already imported"..."""
NONCE_TOO_LOW = re.compile(r"nonce too low|nonce is too low|invalid transaction nonce: expected (\d+), but got (\d+)", re.I)
"""geth's words, and py-evm's (the dev master: "Invalid transaction nonce: Expected 1, but got 0")."""
BUSY = re.compile(r"txpool is full|not ready|rate limit|too many requests|try again|temporar|timed? ?out|busy|syncing", re.I)
"""Answers about the target's condition, not the transaction's."""
BUSY_CODES = frozenset({-32603, -32005, -32002, 429})
"""Internal error, limit exceeded, request timeout, and providers' rate-limit code."""


class EmitError(Exception):
    """A send to a target failed; ``retriable`` says whether trying again may help.

    Attributes:
        target: the target's label (host:port, never the full URL, which may hold a key).
        reason: what the target (or the connection) said.
    """

    retriable: ClassVar[bool] = False

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason


class TargetUnavailable(EmitError):
    """Connection refused or reset, timeout, HTTP 5xx/429, a busy or malformed answer: retried."""

    retriable = True


class TargetRejected(EmitError):
    """The target refused the transaction itself (nonce too low, insufficient funds, invalid ...)."""

    retriable = False


class NonceTooLow(TargetRejected):
    """The sender's nonce moved past this transaction: it was mined (maybe this one: ask the target)."""


class Sent(Enum):
    ACCEPTED = "accepted"
    KNOWN = "known"
    """The target already had it ("already known")."""


def label(url: str) -> str:
    """A target's name for logs, metrics and dead letters: scheme://host:port, without path or credentials."""
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}"


def classify(target: str, error: Any) -> EmitError | Sent:
    """A JSON-RPC error object from ``eth_sendRawTransaction`` to what it means for the emitter."""
    if not isinstance(error, dict):
        return TargetUnavailable(target, f"malformed JSON-RPC error {error!r}")
    message = str(error.get("message", ""))
    code = error.get("code")
    if ALREADY_KNOWN.search(message):
        return Sent.KNOWN
    nonce = NONCE_TOO_LOW.search(message)
    if nonce is not None:
        expected, got = nonce.group(1), nonce.group(2)
        if expected is None or int(got) < int(expected):
            return NonceTooLow(target, message)
        return TargetRejected(target, message)  # a nonce gap: the target will not take it
    if BUSY.search(message) or code in BUSY_CODES:
        return TargetUnavailable(target, f"error {code}: {message}")
    return TargetRejected(target, message or f"error {code}")


class RpcTarget:
    """``eth_sendRawTransaction`` (and a lookup by hash) against one JSON-RPC URL.

    Arguments:
        url: the endpoint.
        session: the aiohttp session to send with (shared by the emitter's targets).
        timeout: seconds one call may take.
    """

    def __init__(self, url: str, session: aiohttp.ClientSession, timeout: float) -> None:
        self.url = url
        self.label = label(url)
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ids = 0

    async def _call(self, method: str, params: list[Any]) -> dict[str, Any]:
        self._ids += 1
        payload = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params}
        try:
            async with self._session.post(self.url, json=payload, timeout=self._timeout) as response:
                body = await response.read()
                if response.status >= 500 or response.status in (408, 429):
                    raise TargetUnavailable(self.label, f"HTTP {response.status}")
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    raise TargetUnavailable(self.label, f"HTTP {response.status}, not JSON: {body[:200]!r}") from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise TargetUnavailable(self.label, f"{type(exc).__name__}: {exc}") from None
        if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
            raise TargetUnavailable(self.label, f"not a JSON-RPC response: {body[:200]!r}")
        return answer

    async def send(self, raw: bytes) -> Sent:
        """Send the transaction; raises ``EmitError`` (``NonceTooLow`` for a nonce the sender already used)."""
        answer = await self._call("eth_sendRawTransaction", ["0x" + raw.hex()])
        if "error" not in answer or answer["error"] is None:
            return Sent.ACCEPTED
        verdict = classify(self.label, answer["error"])
        if isinstance(verdict, EmitError):
            raise verdict
        return verdict

    async def knows(self, tx_hash: bytes) -> bool:
        """The target has the transaction (mined or pending)."""
        answer = await self._call("eth_getTransactionByHash", ["0x" + tx_hash.hex()])
        return answer.get("result") is not None
