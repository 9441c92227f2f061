"""The web3 namespace: client identification and Keccak-256."""

from __future__ import annotations

import platform
import sys

from eth_utils import keccak

from rpc import params as p
from rpc.backend import ReplicaBackend
from rpc.dispatch import Method, MethodTable
from rpc.format import data

VERSION = "0.1.0"


def client_version() -> str:
    """geth's shape: name/version/os-arch/runtime."""
    system = platform.system().lower()
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    return f"ethercattle/v{VERSION}/{system}-{machine}/{runtime}"


CLIENT_VERSION = client_version()


def web3_client_version(backend: ReplicaBackend) -> str:
    return CLIENT_VERSION


def web3_sha3(backend: ReplicaBackend, payload: bytes) -> str:
    return data(keccak(payload))


METHODS: MethodTable = {
    "web3_clientVersion": Method(web3_client_version),
    "web3_sha3": Method(web3_sha3, (p.required(p.data),)),
}
