"""Repeats remembers a bounded number of kinds, whatever clients or log messages make up."""

from __future__ import annotations

from cluster.repeats import Repeats


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_at_most_max_kinds_are_remembered() -> None:
    repeats = Repeats(window=10, clock=Clock(), max_kinds=8)
    for n in range(1000):
        assert repeats.admit(("message", n)) == ""
    assert len(repeats) == 8


def test_the_kind_admitted_least_recently_is_forgotten_first() -> None:
    clock = Clock()
    repeats = Repeats(window=10, clock=clock, max_kinds=2)
    repeats.admit("old")
    repeats.admit("recent")
    clock.now = 11
    repeats.admit("old")  # admitted again: now the most recent
    repeats.admit("new")  # forgets "recent"
    assert repeats.admit("old") is None  # still remembered: dropped within its window
    assert repeats.admit("recent") == ""  # forgotten: passes as a first
