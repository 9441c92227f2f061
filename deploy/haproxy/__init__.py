"""HAProxy in front of a cluster's replicas: render the config, run it (tests, local clusters).

``render()`` fills ``haproxy.cfg.template``; ``HAProxy`` starts ``haproxy -f`` on it and
reads its CSV statistics (which servers are UP, how many requests each got).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Sequence

TEMPLATE = Path(__file__).with_name("haproxy.cfg.template")


@dataclass(frozen=True)
class Backend:
    """One replica: its name in HAProxy and its RPC address."""

    name: str
    address: str
    """host:port of the replica's web port (JSON-RPC, /readyz, WebSocket)."""


def render(
    backends: Sequence[Backend], bind: str, stats_bind: str, inter: str = "2s", fall: int = 3, rise: int = 2,
    maxconn: int = 4096, global_extra: str = "",
) -> str:
    """The config text for ``backends`` behind ``bind`` (e.g. ``127.0.0.1:8545``)."""
    servers = "\n".join(f"    server {b.name} {b.address}" for b in backends)
    return Template(TEMPLATE.read_text()).substitute(
        bind=bind, stats_bind=stats_bind, inter=inter, fall=fall, rise=rise, maxconn=maxconn,
        servers=servers, global_extra=global_extra,
    )


@dataclass
class HAProxy:
    """A running ``haproxy -f CONFIG`` (``-db``: foreground, no daemon)."""

    config: Path
    port: int
    stats_port: int
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "HAProxy":
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        check = subprocess.run([binary, "-c", "-f", str(self.config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy rejects {self.config}: {check.stdout}{check.stderr}")
        self.process = subprocess.Popen([binary, "-db", "-f", str(self.config)], stdout=self.log.open("ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.stats()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"haproxy exited: {self.log.read_text()}") from None
                time.sleep(0.05)
        raise TimeoutError("haproxy did not start")

    def stats(self) -> dict[str, dict[str, str]]:
        """The backend's servers by name: HAProxy's CSV row (``status``: UP/DOWN..., ``stot``: sessions)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=2) as response:
            text = response.read().decode()
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {row["svname"]: row for row in rows if row["pxname"] == "replicas" and row["svname"] not in ("BACKEND", "FRONTEND")}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
