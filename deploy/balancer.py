"""One URL for local clusters: HAProxy in front of their replicas, as in production.

``ethercattle up`` starts it once the replicas are ready: JSON-RPC and WebSockets on one
port, round robin over the replicas whose ``/readyz`` answers 200: the production template and
check timing (every 2 s, out after 3 failures), since quicker checks flap when the box is saturated.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Mapping

from deploy.haproxy import Backend, HAProxy, render
from deploy.localbroker import free_port


def start_balancer(datadir: Path, port: int, replica_ports: Mapping[str, int]) -> HAProxy | None:
    """HAProxy on 127.0.0.1:``port`` over the replicas on ``replica_ports`` (by server name); None when haproxy is not installed."""
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        return None
    stats_port = free_port()
    config = datadir / "haproxy.cfg"
    backends = [Backend(name, f"127.0.0.1:{replica_port}") for name, replica_port in replica_ports.items()]
    config.write_text(render(backends, bind=f"127.0.0.1:{port}", stats_bind=f"127.0.0.1:{stats_port}"))
    return HAProxy(config, port, stats_port, datadir / "haproxy.log").start()
