"""Where a replica continues on a log the master re-based after the broker lost the old one."""

from cluster.record import Rebase
from replica.position import Position
from replica.rebase import continued_position

REBASE = Rebase(100, 12, b"\2" * 32)


def test_a_replica_holding_the_rebase_record_continues_from_the_new_logs_start() -> None:
    assert continued_position(Position(100, 5000, b"mac"), (0, REBASE)) == Position(100, 0, b"")


def test_a_replica_ahead_of_the_rebase_record_continues_and_skips_what_it_holds() -> None:
    assert continued_position(Position(103, 5000, b"mac"), (0, REBASE)) == Position(103, 0, b"")


def test_a_replica_behind_the_rebase_record_cannot_continue() -> None:
    assert continued_position(Position(99, 4000, b"mac"), (0, REBASE)) is None


def test_a_log_without_a_rebase_is_not_continued() -> None:
    assert continued_position(Position(100, 5000, b"mac"), None) is None
