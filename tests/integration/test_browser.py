"""A page served from another origin calls a replica from headless Chromium, over HTTP and WebSocket.

The replica allows one page origin (RPC_CORS_DOMAINS, WS_ORIGINS); the same page served
from a second origin is refused by the browser on both transports. The page reports
what it got back to the server that served it, and its last script is held until both
reports are in, so Chromium's page load (after which it exits) waits for them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deploy.localbroker import free_port
from tests.integration.harness import Cluster
from tests.integration.test_health import chromium

pytestmark = pytest.mark.broker

PAGE = """<!doctype html><html><body>
<script>
const rpc = "%(rpc)s";
const report = (transport, text) => fetch("/report", {method: "POST", body: transport + " " + text});
fetch(rpc, {method: "POST", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({jsonrpc: "2.0", id: 1, method: "eth_chainId"})})
  .then(response => response.json()).then(answer => report("http", "ok " + answer.result))
  .catch(error => report("http", "refused " + error.name));
const socket = new WebSocket(rpc.replace("http", "ws"));
socket.onopen = () => socket.send(JSON.stringify({jsonrpc: "2.0", id: 2, method: "eth_chainId"}));
socket.onmessage = message => { report("ws", "ok " + JSON.parse(message.data).result); socket.close(); };
socket.onerror = () => report("ws", "refused");
</script>
<script src="/wait"></script>
</body></html>"""
TRANSPORTS = {"http", "ws"}


@dataclass
class PageSite:
    """The page, and what the page reported from its origin."""

    body: str = ""
    reports: dict[str, str] = field(default_factory=dict)
    complete: threading.Event = field(default_factory=threading.Event)

    def record(self, line: str) -> None:
        transport, _, text = line.partition(" ")
        self.reports[transport] = text
        if TRANSPORTS <= self.reports.keys():
            self.complete.set()


@contextmanager
def page_server(site: PageSite) -> Iterator[str]:
    """Serve ``site`` on its own loopback port: an origin other than the replica's."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/wait":
                site.complete.wait(15)
                self._answer("", "text/javascript")
            else:
                self._answer(site.body, "text/html")

        def do_POST(self) -> None:  # noqa: N802
            site.record(self.rfile.read(int(self.headers["Content-Length"])).decode())
            self._answer("", "text/plain")

        def _answer(self, body: str, content_type: str) -> None:
            encoded = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def visit(url: str, site: PageSite) -> dict[str, str]:
    """Load the page in headless Chromium; what it reported."""
    loaded = chromium("--dump-dom", url + "/")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    return site.reports


def test_a_page_on_an_allowed_origin_calls_the_replica_and_others_are_refused(cluster: Cluster) -> None:
    cluster.start_master(block_time=0.5)
    allowed_site, other_site = PageSite(), PageSite()
    with page_server(allowed_site) as allowed, page_server(other_site) as other:
        replica = cluster.start_replica("r1", rpc_cors_domains=allowed, ws_origins=allowed)
        replica.wait_ready()
        chain_id = replica.rpc("eth_chainId")["result"]
        allowed_site.body = other_site.body = PAGE % {"rpc": replica.url + "/"}
        assert visit(allowed, allowed_site) == {"http": f"ok {chain_id}", "ws": f"ok {chain_id}"}
        assert visit(other, other_site) == {"http": "refused TypeError", "ws": "refused"}
