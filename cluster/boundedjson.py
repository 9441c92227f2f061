"""JSON parsing that cannot be made to recurse without bound.

py_ecc (imported by py-evm) raises Python's recursion limit to 100,000, so the
standard library's C decoder recurses on a body of 70,000 ``[`` until the thread's
stack overflows and the whole process dies with SIGSEGV. orjson stops at a nesting
depth of 1,024 by itself, but every parse that reaches the standard decoder (big
integers kept exact, geth's "first value, ignore the rest", records read off a
topic) must have its nesting counted first, without recursion. Every place that
parses JSON from outside the process goes through this module.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from array import array
from typing import Any

MAX_DEPTH = 1024
"""Deepest nesting accepted: orjson's own limit, so the fast and the exact parser agree."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
"""A complete JSON string literal (brackets inside one do not nest)."""

_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
"""Openers to +1 and closers to -1 (as signed bytes); every other byte is removed below."""
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


class NestingTooDeep(ValueError):
    """A document nested deeper than the limit (refused before any recursive parser ran)."""

    def __init__(self, depth: int, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels (at least {depth})")
        self.depth = depth
        self.limit = limit


def nesting_depth(document: bytes | str) -> int:
    """The deepest bracket nesting of ``document`` outside string literals.

    Counted in C (a regex, a translation and an accumulation), linear in the size: a
    5 MB body of brackets costs about a tenth of a second. An unterminated string's
    brackets count too: such a document is not JSON anyway.
    """
    raw = document.encode("utf-8", errors="replace") if isinstance(document, str) else document
    brackets = _STRING.sub(b"", raw).translate(_STEPS, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = array("b")
    steps.frombytes(brackets)
    return max(0, max(itertools.accumulate(steps)))


def check_depth(document: bytes | str, limit: int = MAX_DEPTH) -> None:
    """Raise ``NestingTooDeep`` when ``document`` nests deeper than ``limit``."""
    depth = nesting_depth(document)
    if depth > limit:
        raise NestingTooDeep(depth, limit)


def loads(document: bytes | bytearray | str, limit: int = MAX_DEPTH) -> Any:
    """``json.loads`` with the nesting bounded first; raises ``ValueError`` on anything that is not JSON
    (also when the process's own recursion limit is below ``limit``)."""
    text = bytes(document) if isinstance(document, bytearray) else document
    depth = nesting_depth(text)
    if depth > limit:
        raise NestingTooDeep(depth, limit)
    try:
        return json.loads(text)
    except RecursionError:
        raise NestingTooDeep(depth, sys.getrecursionlimit()) from None


__all__ = ["MAX_DEPTH", "NestingTooDeep", "check_depth", "loads", "nesting_depth"]
