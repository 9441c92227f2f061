"""The bounded parse refuses deep nesting before any recursive parser runs, and reads everything else."""

from __future__ import annotations

import sys

import pytest

from cluster.boundedjson import MAX_DEPTH, NestingTooDeep, loads, nesting_depth


def test_seventy_thousand_brackets_are_refused_without_recursing() -> None:
    with pytest.raises(NestingTooDeep, match="deeper than 1024"):
        loads(b"[" * 70_000)


def test_nesting_within_the_limit_parses() -> None:
    assert loads("[" * 100 + "]" * 100) is not None


def test_nesting_past_the_interpreters_own_recursion_limit_is_refused_too() -> None:
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(500)
    try:
        with pytest.raises(NestingTooDeep):
            loads("[" * 800 + "]" * 800)
    finally:
        sys.setrecursionlimit(previous)


def test_brackets_inside_strings_do_not_count() -> None:
    document = '["' + "[" * 5000 + '\\"{", {"a": [1]}]'
    assert nesting_depth(document) == 3
    assert loads(document)[1] == {"a": [1]}


def test_big_integers_stay_exact() -> None:
    assert loads(b'{"id": 123456789012345678901234567890}') == {"id": 123456789012345678901234567890}


def test_invalid_json_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        loads(b'{"a":')
