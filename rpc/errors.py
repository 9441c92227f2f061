"""The RPC's one error table: every error a client can see, with go-ethereum's code and text.

Handlers raise these; the dispatcher turns them into JSON-RPC error objects. Anything
else that escapes a handler goes through :func:`from_exception`, the single mapping
from py-evm's (and our storage's) exceptions to geth's answers; what it does not know
becomes -32603 "method handler crashed" (geth's text for a recovered panic), logged
with the request id by the dispatcher, never sent as a traceback.
"""

from __future__ import annotations

import re
from typing import Any

from eth import exceptions as evm_errors
from trie.exceptions import MissingTrieNode

from chain.errors import UnsupportedChain

# JSON-RPC 2.0 codes, and the ones go-ethereum adds.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
"""geth's default code for any error that does not carry its own."""
REQUEST_TIMEOUT = -32002
LIMIT_EXCEEDED = -32005
"""EIP-1474's "limit exceeded": a request refused under load, retryable."""
RESPONSE_TOO_LARGE = -32003
EXECUTION_REVERTED = 3


class RpcError(Exception):
    """An error answered to the client as a JSON-RPC error object.

    Attributes:
        code: the JSON-RPC error code.
        message: the human-readable text (geth's wording where geth has one).
        data: optional extra payload (revert data as hex for code 3).
    """

    code: int = SERVER_ERROR

    def __init__(self, message: str, data: Any = None, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, Any]:
        """The ``error`` member of a response, with ``data`` only when there is some."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ParseError(RpcError):
    """The body is not JSON."""

    code = PARSE_ERROR

    def __init__(self, message: str = "parse error") -> None:
        super().__init__(message)


class InvalidRequest(RpcError):
    """A message that is not a request (no method, bad version, empty or huge batch)."""

    code = INVALID_REQUEST

    def __init__(self, message: str = "invalid request") -> None:
        super().__init__(message)


class MethodNotFound(RpcError):
    """No handler is registered under the requested wire name."""

    code = METHOD_NOT_FOUND

    def __init__(self, method: str) -> None:
        super().__init__(f"the method {method} does not exist/is not available")


class InvalidParams(RpcError):
    """Arguments that do not decode (geth: "invalid argument N: ...")."""

    code = INVALID_PARAMS


class InternalError(RpcError):
    """A handler failed in a way it did not plan for (details only in the log)."""

    code = INTERNAL_ERROR

    def __init__(self, message: str = "method handler crashed") -> None:
        super().__init__(message)


class ServerError(RpcError):
    """geth's plain errors (-32000): header not found, bad block range, limits..."""

    code = SERVER_ERROR


class HeaderNotFound(ServerError):
    """The requested block is not in this replica's database."""

    def __init__(self, message: str = "header not found") -> None:
        super().__init__(message)


class LimitExceeded(ServerError):
    """A request asks for more work than this replica's limits allow."""


class NotReady(ServerError):
    """The replica is not serving yet; the reason comes from the readiness hook."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"replica not ready: {reason}")


class Overloaded(RpcError):
    """Too many requests in flight: refused at once, to be retried (the code geth's
    ecosystem uses for "limit exceeded")."""

    code = LIMIT_EXCEEDED

    def __init__(self, reason: str) -> None:
        super().__init__(f"server busy ({reason}), retry shortly")


class RequestTimeout(RpcError):
    """A whole request ran past its time limit (geth's HTTP handler timeout)."""

    code = REQUEST_TIMEOUT

    def __init__(self, message: str = "request timed out") -> None:
        super().__init__(message)


class ResponseTooLarge(RpcError):
    """A batch's responses grew past the response size limit."""

    code = RESPONSE_TOO_LARGE

    def __init__(self, message: str = "response too large") -> None:
        super().__init__(message)


class ExecutionReverted(RpcError):
    """A call ended in REVERT with data; geth decodes Error(string) and Panic(uint256)."""

    code = EXECUTION_REVERTED

    def __init__(self, revert_data: bytes) -> None:
        reason = unpack_revert_reason(revert_data)
        message = "execution reverted" if reason is None else f"execution reverted: {reason}"
        super().__init__(message, data="0x" + revert_data.hex())
        self.revert_data = revert_data


ERROR_SELECTOR = bytes.fromhex("08c379a0")
PANIC_SELECTOR = bytes.fromhex("4e487b71")
PANIC_REASONS = {
    0x00: "generic panic",
    0x01: "assert(false)",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "enum overflow",
    0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds array access; popping on an empty array",
    0x32: "out-of-bounds access of an array or bytesN",
    0x41: "out of memory",
    0x51: "uninitialized function",
}
"""Solidity's panic codes, worded as geth's ``abi.UnpackRevert``."""


def unpack_revert_reason(data: bytes) -> str | None:
    """The reason geth shows for revert data, or None when it is not Error/Panic ABI."""
    if len(data) < 4:
        return None
    selector, body = data[:4], data[4:]
    if selector == ERROR_SELECTOR:
        return _abi_string(body)
    if selector == PANIC_SELECTOR:
        if len(body) < 32:
            return None
        code = int.from_bytes(body[:32], "big")
        return PANIC_REASONS.get(code, f"unknown panic code: {code:#x}")
    return None


def _abi_string(body: bytes) -> str | None:
    """Decode one ABI ``string`` argument, or None where geth's unpacker would fail."""
    if len(body) < 64:
        return None
    offset = int.from_bytes(body[:32], "big")
    if offset + 32 > len(body):
        return None
    length = int.from_bytes(body[offset:offset + 32], "big")
    start = offset + 32
    if start + length > len(body):
        return None
    return body[start:start + length].decode("utf-8", errors="replace")


VM_ERROR_MESSAGES: tuple[tuple[type[Exception], str], ...] = (
    (evm_errors.OutOfGas, "out of gas"),
    (evm_errors.InsufficientStack, "stack underflow"),
    (evm_errors.FullStack, "stack limit reached 1024"),
    (evm_errors.InvalidJumpDestination, "invalid jump destination"),
    (evm_errors.InsufficientFunds, "insufficient balance for transfer"),
    (evm_errors.StackDepthLimit, "max call depth exceeded"),
    (evm_errors.ContractCreationCollision, "contract address collision"),
    (evm_errors.WriteProtection, "write protection"),
    (evm_errors.OutOfBoundsRead, "return data out of bounds"),
    (evm_errors.ReservedBytesInCode, "invalid code: must not begin with 0xef"),
)
"""py-evm's EVM failures as geth's ``vm`` package words them (first match wins)."""


def vm_error_message(error: Exception) -> str:
    """geth's text for an EVM failure py-evm reported as ``error``."""
    if isinstance(error, evm_errors.InvalidInstruction):
        return _invalid_instruction_message(error)
    for kind, message in VM_ERROR_MESSAGES:
        if isinstance(error, kind):
            return message
    return str(error) or type(error).__name__


def _invalid_instruction_message(error: Exception) -> str:
    """py-evm raises InvalidInstruction for bad jumps too; geth words both its own way."""
    text = str(error)
    if text.startswith("Jump"):
        return "invalid jump destination"
    match = re.match(r"Invalid opcode 0x([0-9a-f]+)", text)
    if match is None:
        return "invalid opcode"
    opcode = int(match.group(1), 16)
    if opcode == 0xFE:
        return "invalid opcode: INVALID"
    return f"invalid opcode: opcode {opcode:#x} not defined"


def from_exception(error: BaseException) -> RpcError:
    """The one mapping from exceptions raised below the handlers to what geth answers."""
    if isinstance(error, RpcError):
        return error
    if isinstance(error, (evm_errors.HeaderNotFound, evm_errors.BlockNotFound,
                          evm_errors.CanonicalHeadNotFound)):
        return HeaderNotFound()
    if isinstance(error, MissingTrieNode):
        return ServerError(f"missing trie node 0x{error.missing_node_hash.hex()}")
    if isinstance(error, evm_errors.StateRootNotFound):
        return ServerError("required historical state unavailable")
    if isinstance(error, evm_errors.VMError):
        return ServerError(vm_error_message(error))
    if isinstance(error, UnsupportedChain):
        return ServerError(str(error))  # e.g. a simulated block reaches a fork ethercattle lacks
    return InternalError()
