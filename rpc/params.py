"""Decoding of JSON-RPC arguments with go-ethereum's rules and go-ethereum's words.

Clients and test suites compare error messages, so each decoder mirrors the Go type
geth declares for that argument (``hexutil.Uint64``, ``common.Hash``,
``rpc.BlockNumberOrHash``...), including what Go's ``encoding/json`` says when a
value has the wrong JSON type. A decoder takes the value as parsed from JSON and
returns a Python value, or raises :class:`ArgumentError`; :func:`parse_positional`
adds geth's "invalid argument N: " prefix and turns it into ``InvalidParams``.
Nothing here touches the database: bad input is refused before any state is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

import orjson

from rpc.errors import InvalidParams

T = TypeVar("T")

MAX_UINT64 = 2**64 - 1
MAX_INT64 = 2**63 - 1
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")


class ArgumentError(Exception):
    """An argument that does not decode; ``str()`` is geth's text for it."""

    soft = False
    """Go's decoder records some mismatches and keeps going (soft); others abort."""


class TypeMismatch(ArgumentError):
    """Go's ``json.UnmarshalTypeError``: a value of the wrong JSON type or format.

    Attributes:
        value: what Go says it found ("string", "number", "non-string", a hex error...).
        go_type: the Go type name geth decodes into.
        struct: innermost Go struct name, when the value was a struct field.
        field: dotted JSON field path from the outermost struct.
    """

    def __init__(self, value: str, go_type: str, struct: str = "", field: str = "",
                 soft: bool = False) -> None:
        self.value, self.go_type, self.struct, self.field = value, go_type, struct, field
        self.soft = soft
        super().__init__(self._text())

    def _text(self) -> str:
        if self.struct or self.field:
            return (f"json: cannot unmarshal {self.value} into Go struct field "
                    f"{self.struct}.{self.field} of type {self.go_type}")
        return f"json: cannot unmarshal {self.value} into Go value of type {self.go_type}"

    def in_field(self, struct: str, field: str) -> TypeMismatch:
        """The same mismatch seen from an enclosing struct (Go adds the context once)."""
        path = field if not self.field else f"{field}.{self.field}"
        return TypeMismatch(self.value, self.go_type, self.struct or struct, path, self.soft)


# Go's hexutil decode errors (their text is what geth prints).
EMPTY_STRING = "empty hex string"
SYNTAX = "invalid hex string"
MISSING_PREFIX = "hex string without 0x prefix"
ODD_LENGTH = "hex string of odd length"
EMPTY_NUMBER = 'hex string "0x"'
LEADING_ZERO = "hex number with leading zero digits"
UINT64_RANGE = "hex number > 64 bits"
BIG256_RANGE = "hex number > 256 bits"


def json_kind(value: Any) -> str:
    """The JSON type name Go's decoder reports for a parsed value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def raw_text(value: Any) -> str:
    """The JSON text Go hands to a raw ``UnmarshalJSON`` (strings without quotes)."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def _has_prefix(text: str) -> bool:
    return len(text) >= 2 and text[0] == "0" and text[1] in "xX"


def _is_hex(text: str) -> bool:
    return _HEX_DIGITS.fullmatch(text) is not None


def _quantity_digits(text: str) -> str:
    """The hex digits of a quantity, with hexutil's checks in its order: prefix, empty, leading zero."""
    if not _has_prefix(text):
        raise ArgumentError(MISSING_PREFIX)
    digits = text[2:]
    if not digits:
        raise ArgumentError(EMPTY_NUMBER)
    if len(digits) > 1 and digits[0] == "0":
        raise ArgumentError(LEADING_ZERO)
    return digits


def decode_uint64_text(text: str) -> int:
    """``hexutil.DecodeUint64``: strict 0x-prefixed quantity of at most 64 bits."""
    if not text:
        raise ArgumentError(EMPTY_STRING)
    digits = _quantity_digits(text)
    value = 0
    for char in digits:  # left to right, first error wins, as strconv.ParseUint
        if not _is_hex(char):
            raise ArgumentError(SYNTAX)
        value = value * 16 + int(char, 16)
        if value > MAX_UINT64:
            raise ArgumentError(UINT64_RANGE)
    return value


def _quantity_text(text: str, max_digits: int, range_error: str) -> int:
    """``hexutil.Uint64/Big.UnmarshalText``: like DecodeUint64, but "" means zero."""
    if not text:
        return 0
    digits = _quantity_digits(text)
    if len(digits) > max_digits:
        raise ArgumentError(range_error)
    if not _is_hex(digits):
        raise ArgumentError(SYNTAX)
    return int(digits, 16)


def _require_string(value: Any, go_type: str) -> str:
    if not isinstance(value, str):
        raise TypeMismatch("non-string", go_type)
    return value


def _wrap(go_type: str, decode: Callable[[str], T], text: str) -> T:
    """hexutil's ``wrapTypeError``: hex format errors become UnmarshalTypeErrors."""
    try:
        return decode(text)
    except TypeMismatch:
        raise
    except ArgumentError as error:
        raise TypeMismatch(str(error), go_type) from None


def uint64(value: Any, go_type: str = "hexutil.Uint64") -> int:
    """A ``hexutil.Uint64`` (or ``hexutil.Uint``) quantity."""
    text = _require_string(value, go_type)
    return _wrap(go_type, lambda t: _quantity_text(t, 16, UINT64_RANGE), text)


def uint(value: Any) -> int:
    """A ``hexutil.Uint`` (indexes)."""
    return uint64(value, "hexutil.Uint")


def big(value: Any) -> int:
    """A ``*hexutil.Big`` quantity of at most 256 bits."""
    text = _require_string(value, "*hexutil.Big")
    return _wrap("*hexutil.Big", lambda t: _quantity_text(t, 64, BIG256_RANGE), text)


def _bytes_text(text: str) -> bytes:
    if not text:
        return b""
    if not _has_prefix(text):
        raise ArgumentError(MISSING_PREFIX)
    digits = text[2:]
    if len(digits) % 2:
        raise ArgumentError(ODD_LENGTH)
    if not _is_hex(digits):
        raise ArgumentError(SYNTAX)
    return bytes.fromhex(digits)


def data(value: Any) -> bytes:
    """A ``hexutil.Bytes`` blob."""
    return _wrap("hexutil.Bytes", _bytes_text, _require_string(value, "hexutil.Bytes"))


def fixed_hex(text: str, size: int, type_name: str) -> bytes:
    """``hexutil.UnmarshalFixedText``: exactly ``size`` bytes, 0x required."""
    if text and not _has_prefix(text):
        raise ArgumentError(MISSING_PREFIX)
    digits = text[2:] if text else ""
    if len(digits) % 2:
        raise ArgumentError(ODD_LENGTH)
    if len(digits) // 2 != size:
        # Not a decError in Go: it is reported as is, without the json: wrapper.
        raise PlainTypeError(f"hex string has length {len(digits)}, want {size * 2} for {type_name}")
    if not _is_hex(digits):
        raise ArgumentError(SYNTAX)
    return bytes.fromhex(digits)


class PlainTypeError(TypeMismatch):
    """A fixed-size hex error Go returns verbatim (not as an UnmarshalTypeError)."""

    def __init__(self, message: str) -> None:
        ArgumentError.__init__(self, message)
        self.value, self.go_type, self.struct, self.field, self.soft = message, "", "", "", False

    def in_field(self, struct: str, field: str) -> TypeMismatch:
        return self


def hash32(value: Any) -> bytes:
    """A ``common.Hash``: exactly 32 bytes."""
    text = _require_string(value, "common.Hash")
    return _wrap("common.Hash", lambda t: fixed_hex(t, 32, "common.Hash"), text)


def address(value: Any) -> bytes:
    """A ``common.Address``: exactly 20 bytes."""
    text = _require_string(value, "common.Address")
    return _wrap("common.Address", lambda t: fixed_hex(t, 20, "common.Address"), text)


def boolean(value: Any) -> bool:
    """A Go ``bool``: null leaves it false, other JSON types are a (soft) mismatch."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise TypeMismatch(json_kind(value), "bool", soft=True)
    return value


def string(value: Any) -> str:
    """A Go ``string``: null leaves it empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeMismatch(json_kind(value), "string", soft=True)
    return value


def float64(value: Any) -> float:
    """A Go ``float64``."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeMismatch(json_kind(value), "float64", soft=True)
    return float(value)


def list_of(item: Callable[[Any], T], go_type: str) -> Callable[[Any], list[T] | None]:
    """A Go slice ``[]X``: null is nil (None), elements decoded in order."""

    def decode(value: Any) -> list[T] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise TypeMismatch(json_kind(value), go_type, soft=True)
        return [item(element) for element in value]

    return decode


def hex_or_decimal64(value: Any) -> int:
    """``math.HexOrDecimal64``: "0x1f", "31" or 31 (eth_feeHistory's blockCount)."""
    text = raw_text(value)
    if text == "":
        return 0
    parsed: int | None
    if _has_prefix(text):
        parsed = _parse_uint(text[2:], 16)
    else:
        parsed = _parse_uint(text, 10)
    if parsed is None:
        raise ArgumentError(f"invalid hex or decimal integer {go_quote(text)}")
    return parsed


def _parse_uint(digits: str, base: int) -> int | None:
    """``strconv.ParseUint`` without underscores: None where Go fails."""
    allowed = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
    if not digits or any(char not in allowed for char in digits):
        return None
    value = int(digits, base)
    return value if value <= MAX_UINT64 else None


def go_quote(text: str) -> str:
    """Go's ``%q`` for the ASCII strings that reach it."""
    return orjson.dumps(text).decode()


# --- structs ------------------------------------------------------------------


def decode_struct(value: Any, struct: str, fields: Mapping[str, Callable[[Any], Any]],
                  optional_null: bool = True) -> dict[str, Any]:
    """Decode a JSON object into named fields as Go's ``encoding/json`` would.

    Keys match field names exactly or case-insensitively, unknown keys are ignored,
    null leaves pointer fields unset, and type errors carry "Go struct field" context.
    Go keeps decoding after a plain type mismatch but stops at a decoder error; the
    first mismatch is reported unless a later hard error stops decoding first.
    """
    if not isinstance(value, dict):
        raise TypeMismatch(json_kind(value), struct, soft=True)
    folded = {name.lower(): name for name in fields}
    result: dict[str, Any] = {}
    saved: ArgumentError | None = None
    for key, raw in value.items():
        name = key if key in fields else folded.get(key.lower())
        if name is None:
            continue
        if raw is None and optional_null:
            result.pop(name, None)
            continue
        try:
            result[name] = fields[name](raw)
        except TypeMismatch as error:
            contextual = error.in_field(struct, name)
            if not error.soft:
                raise contextual from None
            saved = saved or contextual
    if saved is not None:
        raise saved
    return result


# --- positional arguments ----------------------------------------------------


@dataclass(frozen=True)
class Param(Generic[T]):
    """One positional argument: its decoder and whether Go declares it a pointer."""

    decode: Callable[[Any], T]
    optional: bool = False
    """A pointer argument: may be absent (None). Required ones must be present."""
    default: Any = None
    """What an absent optional argument means (geth 1.16: a left-out block is "latest")."""


def required(decode: Callable[[Any], T]) -> Param[T]:
    return Param(decode, optional=False)


def optional(decode: Callable[[Any], T]) -> Param[T]:
    """An optional argument: absent and JSON null both give None, as a Go pointer."""

    def decode_or_none(value: Any) -> T | None:
        return None if value is None else decode(value)

    return Param(decode_or_none, optional=True)  # type: ignore[arg-type]


def parse_positional(params: Any, specs: Sequence[Param[Any]]) -> list[Any]:
    """geth's ``parsePositionalArguments``: a JSON array (or nothing) into arguments."""
    if params is None:
        values: list[Any] = []
    elif isinstance(params, list):
        values = params
    else:
        raise InvalidParams("non-array args")
    if len(values) > len(specs):
        raise InvalidParams(f"too many arguments, want at most {len(specs)}")
    args: list[Any] = []
    for index, (spec, value) in enumerate(zip(specs, values)):
        try:
            args.append(spec.decode(value))
        except ArgumentError as error:
            raise InvalidParams(f"invalid argument {index}: {error}") from None
    for index in range(len(values), len(specs)):
        if not specs[index].optional:
            raise InvalidParams(f"missing value for required argument {index}")
        args.append(specs[index].default)
    return args
