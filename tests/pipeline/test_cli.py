"""The command line's dev-chain fork flag."""

from __future__ import annotations

import pytest

from chain.dev import DEV_FORKS
from pipeline import cli


def test_cli_offers_exactly_the_dev_forks() -> None:
    assert cli.DEV_FORKS == DEV_FORKS


@pytest.mark.parametrize("command", [["master", "--dev"], ["up"]])
def test_dev_master_defaults_to_the_newest_fork(command: list[str]) -> None:
    assert cli.parser().parse_args(command).fork == "osaka"


def test_dev_master_takes_an_older_fork() -> None:
    assert cli.parser().parse_args(["master", "--dev", "--fork", "prague"]).fork == "prague"
