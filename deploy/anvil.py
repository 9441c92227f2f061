"""anvil (npm ``@foundry-rs/anvil``, pinned) as a local upstream node: installed by npm, started on a genesis.json.

The benchmarks and the follow tests run anvil beside the cluster; this is the one
place that installs it (into ``.bench/cache/anvil``, which git ignores) and starts it
the way a chain that any client (and ``ethercattle master --follow``) agrees with needs.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from deploy.localbroker import free_port, wait_for_port

ANVIL_VERSION = "1.7.1"
ANVIL_CACHE = Path(__file__).resolve().parents[1] / ".bench" / "cache" / "anvil"
HARDFORK = "prague"
"""The newest fork py-evm 0.12 runs."""


class AnvilUnavailable(RuntimeError):
    """anvil is not installed and npm could not install it; the message says why."""


def anvil_binary_in(prefix: Path) -> str | None:
    """The native binary that the platform package (@foundry-rs/anvil-<os>-<arch>) ships."""
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), "")
    for path in sorted(glob.glob(str(prefix / "node_modules" / "@foundry-rs" / f"anvil-{sys.platform}-{arch}" / "bin" / "anvil"))):
        if os.access(path, os.X_OK):
            return path
    wrapper = prefix / "node_modules" / ".bin" / "anvil"  # node wrapper that spawns the same binary
    return str(wrapper) if wrapper.exists() else None


def ensure_anvil(prefix: Path = ANVIL_CACHE) -> str:
    """The anvil binary, installed with npm into ``prefix`` the first time; raises ``AnvilUnavailable``."""
    found = anvil_binary_in(prefix)
    if found:
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise AnvilUnavailable("npm is missing, so anvil can't be installed (Debian: apt-get install -y npm)")
    prefix.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", f"@foundry-rs/anvil@{ANVIL_VERSION}"],
                          capture_output=True, text=True)
    found = anvil_binary_in(prefix)
    if done.returncode != 0 or found is None:
        raise AnvilUnavailable(f"npm could not install anvil {ANVIL_VERSION} (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return found


def start_anvil(genesis: Path, log_path: Path, *extra: str, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """anvil on 127.0.0.1 started from ``genesis`` (blocks mined only when asked, unless ``extra`` says otherwise)."""
    port = port or free_port()
    process = subprocess.Popen(
        [ensure_anvil(), "--init", str(genesis), "--host", "127.0.0.1", "--port", str(port), "--hardfork", HARDFORK,
         "--disable-default-create2-deployer", *extra],
        stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    wait_for_port(port, 30)
    # anvil stamps blocks mined within one second with the same time, which no client
    # (and no py-evm) accepts as a valid chain: one second per block, as a real network would.
    anvil_rpc(port, "anvil_setBlockTimestampInterval", 1)
    return process, port


def anvil_rpc(port: int, method: str, *params: Any) -> Any:
    """One JSON-RPC call to the anvil on ``port``; raises ``RuntimeError`` with its error."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise RuntimeError(f"anvil {method}: {answer['error']}")
    return answer.get("result")
