"""Fixtures of the real-broker suites: one Tansu broker for the session, a cluster per test."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from deploy.localbroker import LocalBroker
from tests.integration.harness import Cluster, master_sequence


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with LocalBroker(log_path=tmp_path_factory.mktemp("broker") / "broker.log") as running:
        yield running


@pytest.fixture
def cluster(broker: LocalBroker, tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(broker.url, tmp_path)
    yield made
    made.stop_all()


@pytest.fixture(scope="module")
def imported(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster whose master imported the rpc-compat chain and whose replica r1, started after the
    import, applied all of it and stopped; no master runs, so nothing more is written.

    Shared by a module's tests that leave it as they found it (an import and a catch-up take
    10-20 s on a loaded box): they read r1's database, or copy it to change it.
    """
    made = Cluster(broker.url, tmp_path_factory.mktemp("imported"))
    try:
        made.import_compat_chain()
        replica = made.start_replica("r1")
        replica.wait_sequence(master_sequence(made.master_dir))
        replica.stop()
        yield made
    finally:
        made.stop_all()
