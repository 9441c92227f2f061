"""JSON-RPC 2.0 dispatch with go-ethereum's handling of odd and hostile input.

The dispatcher merges the namespace tables (a wire name defined twice is refused at
start-up), parses a body into single requests or batches, answers calls, stays
silent for notifications, and words every failure as geth's ``rpc`` package does:
"parse error", "invalid request", "empty batch", "batch too large", "the method X
does not exist/is not available", "response too large". It knows nothing of HTTP,
so the same object serves the standalone app and the replica's Faust web view.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import orjson

from cluster.boundedjson import NestingTooDeep, check_depth
from cluster.repeats import Repeats
from rpc.answerscope import answer_scope
from rpc.backend import ReplicaBackend
from rpc.blockwait import BlockWait
from rpc.brokerwait import BrokerWait
from rpc.budget import RequestBudget
from rpc.errors import (
    INTERNAL_ERROR,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    RequestTimeout,
    ResponseTooLarge,
    RpcError,
    from_exception,
)
from rpc.params import ArgumentError, Param, parse_positional
from rpc.response_cache import ResponseCache

log = logging.getLogger(__name__)

VERSION = "2.0"
_ABSENT = object()
"""Marks a member missing from a message (a notification has no ``id`` at all)."""


@dataclass(frozen=True)
class Method:
    """One wire method: a thin handler over the backend and its argument decoders."""

    handler: Callable[..., Any]
    """``handler(backend, *args)``; may be a coroutine function."""
    params: Sequence[Param[Any]] = ()
    """Positional argument decoders, in order."""
    offload: bool = False
    """Run on a worker thread. Only for work measured in milliseconds (EVM execution,
    log and fee-history scans): a LevelDB read costs microseconds, a thread hop more."""
    waits_on_broker: bool = False
    """The answer waits on the broker (an acknowledgement, a cluster topic read to its end):
    such calls share a bounded number of places (``rpc.brokerwait``)."""
    waits_long: bool = False
    """Of those, it may wait long after the broker answered (for a receipt): a smaller share of the places."""


MethodTable = Mapping[str, Method]

CallObserver = Callable[[str, str, float], None]
"""Told of every call answered: method, ``"ok"`` or the error code, seconds (for metrics)."""


def merge_tables(*tables: MethodTable) -> dict[str, Method]:
    """One table from the namespaces' tables; a wire name defined twice is a bug."""
    merged: dict[str, Method] = {}
    for table in tables:
        for name, method in table.items():
            if name in merged:
                raise ValueError(f"JSON-RPC method {name} is defined twice")
            merged[name] = method
    return merged


@dataclass
class Message:
    """One decoded JSON-RPC message, with Go's notion of which members are present."""

    version: Any = None
    id: Any = _ABSENT
    method: str = ""
    params: Any = None
    has_params: bool = False
    has_result: bool = False

    @classmethod
    def from_json(cls, value: Any) -> Message:
        """Read members as Go's decoder does: names match case-insensitively,
        members of the wrong type stay empty."""
        message = cls()
        if not isinstance(value, dict):
            return message
        for key, member in value.items():
            name = key.lower()
            if name == "jsonrpc":
                message.version = member if isinstance(member, str) else None
            elif name == "id":
                message.id = member
            elif name == "method":
                message.method = member if isinstance(member, str) else ""
            elif name == "params":
                message.params, message.has_params = member, member is not None
            elif name in ("result", "error"):
                message.has_result = message.has_result or member is not None
        return message

    @property
    def valid_id(self) -> bool:
        return self.id is not _ABSENT and not isinstance(self.id, (dict, list))

    @property
    def is_call(self) -> bool:
        return self.version == VERSION and self.valid_id and self.method != ""

    @property
    def is_notification(self) -> bool:
        return self.version == VERSION and self.id is _ABSENT and self.method != ""

    @property
    def is_response(self) -> bool:
        return (self.version == VERSION and self.valid_id and self.method == ""
                and not self.has_params and self.has_result)

    @property
    def response_id(self) -> Any:
        return self.id if self.valid_id else None


def encode_id(request_id: Any) -> bytes:
    """The id as the client sent it (orjson stops at 64-bit integers; json does not)."""
    try:
        return orjson.dumps(request_id)
    except TypeError:
        return json.dumps(request_id).encode()


def _envelope(request_id: Any, member: bytes, payload: bytes) -> bytes:
    return b'{"jsonrpc":"2.0","id":' + encode_id(request_id) + b',"' + member + b'":' + payload + b"}"


def encode_error(request_id: Any, error: RpcError) -> bytes:
    return _envelope(request_id, b"error", orjson.dumps(error.to_json()))


def parse_body(body: bytes) -> Any:
    """The first JSON value of the body, as Go's stream decoder reads it.

    orjson first (fast); if it refuses, the standard library reads the first value
    and ignores what follows, as geth does, and keeps big integers exact. The nesting
    is bounded before the standard library's recursive decoder sees the body.
    Raises ``ParseError`` when there is no valid JSON value at all.
    """
    try:
        value = orjson.loads(body)
        if not _has_inexact_id(value):
            return value
    except orjson.JSONDecodeError:
        pass
    try:
        check_depth(body)
    except NestingTooDeep as error:
        raise ParseError(f"parse error: {error}") from None
    try:
        text = body.decode("utf-8", errors="replace").lstrip(" \t\r\n")
        decoder = json.JSONDecoder(parse_constant=_reject_constant)
        return decoder.raw_decode(text)[0]
    except (ValueError, RecursionError):
        raise ParseError() from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _has_inexact_id(value: Any) -> bool:
    """orjson reads integers beyond 64 bits as floats; ids must echo exactly."""
    messages = value if isinstance(value, list) else [value]
    return any(isinstance(m, dict) and isinstance(m.get("id"), float) for m in messages)


class Dispatcher:
    """Turns request bodies into response bodies over one backend and method table."""

    def __init__(self, backend: ReplicaBackend, methods: MethodTable, on_call: CallObserver | None = None,
                 responses: ResponseCache | None = None, block_wait: BlockWait | None = None,
                 broker_wait: BrokerWait | None = None) -> None:
        self.backend = backend
        self.methods = dict(methods)
        self.limits = backend.limits
        self.on_call = on_call
        self.responses = responses if responses is not None else ResponseCache(0)
        self.block_wait = block_wait if block_wait is not None else BlockWait(0, 0.0)
        self.broker_wait = broker_wait if broker_wait is not None else BrokerWait(self.limits.max_broker_waiting)
        self.crashes = Repeats()
        """Crash tracebacks logged: the first of each kind per window, then a count of the repeats."""

    async def handle_body(self, body: bytes) -> bytes | None:
        """The response body for a request body; None when nothing is to be sent
        (an empty body, notifications only, responses only)."""
        if not body.strip():
            return None
        try:
            parsed = parse_body(body)
        except ParseError as error:
            return encode_error(None, error)
        with RequestBudget(self.limits) as budget:
            if isinstance(parsed, list):
                return await self._handle_batch(parsed, budget)
            return await self._handle_one(Message.from_json(parsed))

    async def _handle_batch(self, items: list[Any], budget: RequestBudget) -> bytes | None:
        if not items:
            return encode_error(None, InvalidRequest("empty batch"))
        messages = [Message.from_json(item) for item in items]
        if len(messages) > self.limits.max_batch_requests:
            first_call = next((m for m in messages if m.is_call), None)
            request_id = first_call.id if first_call else None
            return b"[" + encode_error(request_id, InvalidRequest("batch too large")) + b"]"
        responses: list[bytes] = []
        size = 0
        for position, message in enumerate(messages):
            if budget.expired:
                responses.extend(self._answer_rest(messages[position:], RequestTimeout()))
                break
            response = await self._handle_one(message)
            if response is None:
                continue
            responses.append(response)
            size += len(response)
            if size > self.limits.max_batch_response_bytes:
                responses.extend(self._answer_rest(messages[position + 1:], ResponseTooLarge()))
                break
        if not responses:
            return None
        return b"[" + b",".join(responses) + b"]"

    @staticmethod
    def _answer_rest(rest: Sequence[Message], error: RpcError) -> list[bytes]:
        """geth answers every call left in the batch with the error once a limit is hit
        (-32003 past the response size, -32002 past the deadline)."""
        return [encode_error(m.response_id, error) for m in rest if not m.is_notification]

    async def _handle_one(self, message: Message) -> bytes | None:
        if message.is_response:
            return None  # an unsolicited response: geth logs and drops it
        if message.is_notification:
            await self._answer(message)
            return None
        if message.is_call:
            return await self._answer(message)
        return encode_error(message.response_id, InvalidRequest())

    async def _answer(self, message: Message) -> bytes:
        """Run one call and report it to ``on_call`` (method, "ok" or the error code, seconds)."""
        started = time.perf_counter()
        response, status = await self._respond(message)
        if self.on_call is not None:
            self.on_call(message.method, status, time.perf_counter() - started)
        return response

    async def _respond(self, message: Message) -> tuple[bytes, str]:
        """Run one call; every failure becomes an error object, never an exception."""
        try:
            payload = await self._result(message)
        except RpcError as error:
            return encode_error(message.response_id, error), str(error.code)
        except ArgumentError as error:
            invalid = InvalidParams(str(error))
            return encode_error(message.response_id, invalid), str(invalid.code)
        except Exception as error:  # noqa: BLE001 - the one place that must catch all
            mapped = from_exception(error)
            if mapped.code == INTERNAL_ERROR:
                self._log_crash(message, error, "crashed")
            return encode_error(message.response_id, mapped), str(mapped.code)
        return _envelope(message.response_id, b"result", payload), "ok"

    async def _result(self, message: Message) -> bytes:
        """The call's encoded result: from the response cache when the same question about the
        same block (or head) was answered before."""
        self.backend.check_ready()
        await self.block_wait.until_named_block(self.backend, message.method, message.params)
        head = self.backend.head_hash()
        if head is None or not self.responses.holds(message.method):
            return await self._encoded(message)
        key = self.responses.key(answer_scope(self.backend, message.method, message.params, head),
                                 message.method, message.params)
        if key is None:
            return await self._encoded(message)
        return await self.responses.answer(key, lambda: self._encoded(message),
                                           keep=lambda: head == self.backend.head_hash())

    async def _encoded(self, message: Message) -> bytes:
        result = await self._run(message)
        try:
            return orjson.dumps(result)
        except TypeError as error:
            self._log_crash(message, error, "returned an unencodable result")
            raise from_exception(RuntimeError()) from None

    def _log_crash(self, message: Message, error: Exception, what: str) -> None:
        """A traceback per (method, exception type) and window: one client repeating a crashing
        request must not fill the disk (4.2 MB of log in 7 minutes, seen)."""
        suffix = self.crashes.admit((message.method, type(error), what))
        if suffix is not None:
            log.error("JSON-RPC %s (id %r) %s%s", message.method, message.response_id, what, suffix, exc_info=error)

    async def _run(self, message: Message) -> Any:
        if message.method.endswith("_subscribe"):
            raise RpcError("notifications not supported", code=-32601)
        method = self.methods.get(message.method)
        if method is None:
            raise MethodNotFound(message.method)
        args = parse_positional(message.params, method.params)
        if method.waits_on_broker:
            with self.broker_wait.held(method.waits_long):
                return await self._call(method, args)
        return await self._call(method, args)

    async def _call(self, method: Method, args: Sequence[Any]) -> Any:
        if method.offload:
            result = await self.backend.offload(method.handler, self.backend, *args)
        else:
            result = method.handler(self.backend, *args)
        if inspect.isawaitable(result):
            result = await result
        return result


__all__ = [
    "Dispatcher",
    "Message",
    "Method",
    "MethodTable",
    "merge_tables",
    "parse_body",
]
