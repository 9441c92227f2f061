"""The status page's data and HTML: this cluster first, then every peer cluster, reachable or not."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Iterator

import pytest

from cluster.settings import Settings
from replica.clusters import unreachable
from replica.peers import PeerClusters
from replica.state import ReplicaState
from replica.status import StatusBoard
from rpc.pages import every_cluster, render_page


@pytest.fixture
def board(tmp_path: Path) -> Iterator[StatusBoard]:
    state = ReplicaState.open(Settings(broker="kafka://127.0.0.1:1", cluster="a", datadir=tmp_path,
                                       secret="a-cluster-secret-0123", replica_id="r1"))
    yield StatusBoard(state, {}, lambda: "http://127.0.0.1:6066")
    state.db.close()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


async def test_the_page_lists_this_cluster_first_then_an_unreachable_peer_as_unreachable(board: StatusBoard) -> None:
    data = await every_cluster(board, PeerClusters({"b": [closed_port_url()]}, timeout=1.0, keep_for=2.0))
    assert [(c["cluster"], c.get("self", False), c["reachable"]) for c in data["clusters"]] == [("a", True, True), ("b", False, False)]
    assert data["clusters"][0]["replicas"][0]["replica"] == "r1" and "cannot connect" in data["clusters"][1]["error"]
    assert data["replicas"][0]["replica"] == "r1"  # this cluster's own table is still there


async def test_without_peers_the_page_shows_only_this_cluster(board: StatusBoard) -> None:
    data = await every_cluster(board, PeerClusters({}, timeout=1.0, keep_for=2.0))
    assert [c["cluster"] for c in data["clusters"]] == ["a"]


def test_a_peers_text_cannot_close_the_pages_inline_script() -> None:
    data = {"interval": 2.0, "clusters": [unreachable("b", "</script><script>alert(1)</script>")]}
    html = render_page(data)
    inline = re.search(r'<script id="initial" type="application/json">(.*?)</script>', html, re.DOTALL)
    assert inline is not None and json.loads(inline.group(1)) == data  # the element ends where the page ends it
