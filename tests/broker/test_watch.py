"""The topic watch says each problem once, and says when it is gone."""

from __future__ import annotations

from broker.watch import ProblemLog


def test_a_problem_is_reported_once_while_it_lasts() -> None:
    problems = ProblemLog()
    assert problems.update({"t": "topic t is missing"}) == (["topic t is missing"], [])
    assert problems.update({"t": "topic t is missing"}) == ([], [])


def test_a_problem_that_changes_is_reported_again() -> None:
    problems = ProblemLog()
    problems.update({"t": "topic t is missing"})
    assert problems.update({"t": "topic t has 4 partition(s)"}) == (["topic t has 4 partition(s)"], [])


def test_a_problem_gone_names_its_topic() -> None:
    problems = ProblemLog()
    problems.update({"t": "topic t is missing", "u": "topic u is missing"})
    assert problems.update({"u": "topic u is missing"}) == ([], ["t"])
