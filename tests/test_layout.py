"""The layout's rule, checked: imports point one way, and only the composition imports the composition.

Each package may import only the packages listed for it (the ground imports
nothing above it); ``pipeline`` (the replica worker's composition root, the
master process, the CLI) may import anything, and nothing imports it, so no
module below it can reach the Faust app.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

ALLOWED: dict[str, set[str]] = {
    "cluster": set(),
    "broker": {"cluster"},
    "storage": set(),
    "chain": {"storage"},
    "master": {"cluster", "broker", "storage", "chain"},
    "replica": {"cluster", "broker", "storage", "chain"},
    "pending": {"cluster", "broker", "storage", "chain", "replica"},
    "tables": {"cluster", "broker"},
    "emitter": {"cluster", "broker", "chain", "tables"},
    "rpc": {"cluster", "storage", "chain", "replica"},
    "filters": {"cluster", "broker", "storage", "chain", "replica", "rpc"},
    "snapshot": {"cluster", "broker", "storage", "chain", "replica", "master"},
    "agents": {"cluster", "broker", "storage", "chain", "replica", "snapshot"},
    "deploy": {"cluster", "broker"},
}
PACKAGES = {*ALLOWED, "pipeline"}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & PACKAGES


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_lies_below_it(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {other}"
        for path in (ROOT / package).rglob("*.py")
        for other in imported_packages(path) - ALLOWED[package] - {package}
    }
    assert not wrong, sorted(wrong)
