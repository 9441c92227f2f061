"""Fixtures of the real-broker suites: one Tansu broker for the session, a cluster per test."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from deploy.localbroker import LocalBroker
from tests.integration.harness import Cluster


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with LocalBroker(log_path=tmp_path_factory.mktemp("broker") / "broker.log") as running:
        yield running


@pytest.fixture
def cluster(broker: LocalBroker, tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(broker.url, tmp_path)
    yield made
    made.stop_all()
