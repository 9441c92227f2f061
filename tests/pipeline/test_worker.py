"""The replica worker's composition: what it puts on /metrics about its bounded structures."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import faust
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster.settings import Settings
from pipeline.worker import Replica, build_replica


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Replica]:
    settings = Settings(broker="kafka://127.0.0.1:1", cluster="main", datadir=tmp_path, secret="s" * 32, replica_id="r1",
                        rpc_response_cache_bytes=1 << 20, filter_max=50, ws_max_connections=7)
    built = build_replica(settings, faust.App("test-worker"))
    yield built
    built.state.db.close()


def bounded(replica: Replica) -> dict[str, tuple[float, float]]:
    """(size, limit) by structure, as /metrics shows them."""
    samples: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(replica.metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name in ("ethercattle_bounded_size", "ethercattle_bounded_limit"):
                samples.setdefault(sample.labels["structure"], {})[sample.name] = sample.value
    return {name: (values["ethercattle_bounded_size"], values["ethercattle_bounded_limit"]) for name, values in samples.items()}


def test_every_cache_and_per_client_structure_is_shown_against_its_limit(replica: Replica) -> None:
    shown = bounded(replica)
    assert shown["response cache"] == (0, 1 << 20)
    assert shown["filters"] == (0, 50)
    assert shown["WebSocket clients"] == (0, 7)
    assert shown["decoded headers"] == (0, 4096)
    assert shown["RPC method labels"] == (0, 256)
    assert set(replica.rpc.backend.caches()) <= set(shown)
    assert {"crash log kinds", "filter transaction index, per partition"} <= set(shown)


def test_method_labels_fill_up_to_their_limit_and_stop(replica: Replica) -> None:
    for n in range(1000):
        replica.metrics.record_rpc(f"eth_made_up_{n}", -32601, 0.001)
    assert bounded(replica)["RPC method labels"] == (256, 256)
