"""The bounded parse refuses deep nesting before any recursive parser runs, and reads everything else."""

from __future__ import annotations

import pytest

from cluster.boundedjson import MAX_DEPTH, NestingTooDeep, loads, nesting_depth


def test_seventy_thousand_brackets_are_refused_without_recursing() -> None:
    with pytest.raises(NestingTooDeep, match="deeper than 1024"):
        loads(b"[" * 70_000)


def test_nesting_at_the_limit_parses() -> None:
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_brackets_inside_strings_do_not_count() -> None:
    document = '["' + "[" * 5000 + '\\"{", {"a": [1]}]'
    assert nesting_depth(document) == 3
    assert loads(document)[1] == {"a": [1]}


def test_big_integers_stay_exact() -> None:
    assert loads(b'{"id": 123456789012345678901234567890}') == {"id": 123456789012345678901234567890}


def test_invalid_json_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        loads(b'{"a":')
