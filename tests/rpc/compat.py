"""Replaying the execution-apis rpc-compat suite (hive's ``rpc-compat`` rules) over HTTP.

Reusable by any test that has a JSON-RPC URL serving the rpc-compat chain: this
package's conformance test (a replica's backend on an imported chain) and the
end-to-end test (a replica fed over Kafka).

Each ``.io`` file holds ``>> request`` / ``<< expected response`` lines, with ``//``
comments. As hive compares them: the request line is sent verbatim; the response
must be deeply equal as JSON, except that when both the expected and the actual
response are errors, ``error.message`` is removed from both first (code and data
still count); a test whose comment says ``speconly`` only needs a successful result
of the expected JSON type (an expected error is compared as usual). ``strict`` also records whether the messages matched.

ethercattle answers as the current execution-apis spec and geth 1.16 do. A suite
recorded before that (the Prague one, geth 1.15) differs in two ways, and both are
said here rather than hidden: its answers lack ``blockTimestamp`` on transactions and
logs (``CURRENT_SPEC_FIELDS``: ignored where a suite never recorded them), and a few of
its cases were answered otherwise since (``SUPERSEDED``: the current suite checks them).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import aiohttp

SUITE = Path(os.environ.get(
    "ETHERCATTLE_RPC_COMPAT",
    Path(__file__).resolve().parents[3] / "shared" / "rpc-compat" / "prague-2025-02",
))
"""The suite beside the checkout (``shared/`` next to the repository), or as configured."""


@dataclass(frozen=True)
class Exchange:
    """One request line and the response the suite expects."""

    request: str
    expected: Any


CURRENT_SPEC_FIELDS = frozenset({"blockTimestamp"})
"""Fields the current spec (geth 1.16) added to transactions and logs."""

SUPERSEDED = {
    "eth_getStorageAt/get-storage-invalid-key": "geth 1.16 and the current suite answer -32602 (invalid params)",
    "eth_getStorageAt/get-storage-invalid-key-too-large": "geth 1.16 and the current suite answer -32602 (invalid params)",
}
"""Cases of the Prague suite (geth 1.15) whose answer the current spec changed, and how."""


@dataclass(frozen=True)
class CompatCase:
    """One ``.io`` file."""

    method: str
    name: str
    path: Path
    comment: str
    exchanges: tuple[Exchange, ...]
    unrecorded_fields: frozenset[str] = frozenset()
    """Current-spec fields its suite was recorded without (ignored in answers)."""

    @property
    def speconly(self) -> bool:
        return "speconly" in self.comment

    @property
    def id(self) -> str:
        return f"{self.method}/{self.name}"


@dataclass
class CaseResult:
    case: CompatCase
    passed: bool
    strict: bool
    """Also equal with error messages compared (geth's exact wording)."""
    detail: str = ""


def load_case(path: Path, unrecorded_fields: frozenset[str] = frozenset()) -> CompatCase:
    comments, exchanges, request = [], [], None
    for raw_line in path.read_text().splitlines():
        line = raw_line.strip()
        if not line:
            continue
        if line.startswith("//"):
            comments.append(line[2:].strip())
        elif line.startswith(">>"):
            request = line[2:].strip()
        elif line.startswith("<<") and request is not None:
            exchanges.append(Exchange(request, json.loads(line[2:].strip())))
            request = None
    return CompatCase(path.parent.name, path.stem, path, "\n".join(comments), tuple(exchanges), unrecorded_fields)


def load_suite(root: Path = SUITE) -> list[CompatCase]:
    """Every ``.io`` file of the suite, sorted by method then name."""
    paths = sorted(root.glob("*/*.io"))
    texts = [path.read_text() for path in paths]
    unrecorded = frozenset(name for name in CURRENT_SPEC_FIELDS if not any(f'"{name}"' in text for text in texts))
    return [load_case(path, unrecorded) for path in paths]


def _without(fields: frozenset[str], expected: Any, actual: Any) -> Any:
    """``actual`` less ``fields`` wherever ``expected`` has no such key (recursively)."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        return {key: _without(fields, expected.get(key), value) for key, value in actual.items()
                if key in expected or key not in fields}
    if isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected):
        return [_without(fields, e, a) for e, a in zip(expected, actual)]
    return actual


def _without_message(response: Any) -> Any:
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        error = {k: v for k, v in response["error"].items() if k != "message"}
        return {**response, "error": error}
    return response


def _json_type(value: Any) -> str:
    return type(value).__name__


def judge(case: CompatCase, expected: Any, actual: Any) -> tuple[bool, bool, str]:
    """(passed under hive's rules, passed strictly, why not)."""
    if case.unrecorded_fields:
        actual = _without(case.unrecorded_fields, expected, actual)
    if case.speconly and not (isinstance(expected, dict) and "error" in expected):
        ok = (isinstance(actual, dict) and "result" in actual and "error" not in actual
              and _json_type(actual["result"]) == _json_type(expected.get("result")))
        return ok, ok, "" if ok else f"speconly: expected a {_json_type(expected.get('result'))} result, got {actual}"
    strict = actual == expected
    both_errors = (isinstance(actual, dict) and "error" in actual
                   and isinstance(expected, dict) and "error" in expected)
    passed = strict or (both_errors and _without_message(actual) == _without_message(expected))
    if passed:
        return True, strict, "" if strict else f"message differs: {actual['error']} vs {expected['error']}"
    return False, False, describe_difference(expected, actual)


def describe_difference(expected: Any, actual: Any, path: str = "$") -> str:
    """The first place two JSON values differ (for readable failures)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                return f"{path}.{key}: missing (expected {_short(expected[key])})"
            if key not in expected:
                return f"{path}.{key}: unexpected {_short(actual[key])}"
            if expected[key] != actual[key]:
                return describe_difference(expected[key], actual[key], f"{path}.{key}")
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{path}: length {len(actual)}, expected {len(expected)}"
        for index, (e, a) in enumerate(zip(expected, actual)):
            if e != a:
                return describe_difference(e, a, f"{path}[{index}]")
    return f"{path}: got {_short(actual)}, expected {_short(expected)}"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) < 200 else text[:200] + "..."


BUSY_RETRIES = 30
"""How often a request answered busy (HTTP 503) is sent again, after the Retry-After it names."""


async def post_until_served(session: aiohttp.ClientSession, url: str, request: str) -> tuple[int, bytes]:
    """(status, body) of ``request``, sent again after each busy answer as the answer says to: a
    replica sheds while it applies the blocks the suite's own transactions mine."""
    for _ in range(BUSY_RETRIES):
        async with session.post(url, data=request.encode(), headers={"Content-Type": "application/json"}) as response:
            body = await response.read()
            if response.status != 503:
                return response.status, body
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    return response.status, body


async def replay_case(session: aiohttp.ClientSession, url: str, case: CompatCase) -> CaseResult:
    """Send each request line verbatim; judge every response."""
    strict_all = True
    for exchange in case.exchanges:
        status, body = await post_until_served(session, url, exchange.request)
        try:
            actual = json.loads(body)
        except ValueError:
            return CaseResult(case, False, False, f"HTTP {status}, not JSON: {body[:200]!r}")
        passed, strict, detail = judge(case, exchange.expected, actual)
        if not passed:
            return CaseResult(case, False, False, detail)
        strict_all = strict_all and strict
    return CaseResult(case, True, strict_all)


async def replay_suite(url: str, cases: Iterable[CompatCase] | None = None) -> list[CaseResult]:
    """Replay every case against ``url``."""
    async with aiohttp.ClientSession() as session:
        return [await replay_case(session, url, case) for case in (cases or load_suite())]


@dataclass
class Tally:
    passed: int = 0
    strict: int = 0
    total: int = 0
    failures: list[str] = field(default_factory=list)


def pass_table(results: Iterable[CaseResult]) -> str:
    """Per-method pass counts (hive's rules, and strict incl. error messages)."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    for result in results:
        tally = tallies[result.case.method]
        tally.total += 1
        tally.passed += result.passed
        tally.strict += result.strict
        if not result.passed:
            tally.failures.append(f"{result.case.name}: {result.detail}")
    width = max((len(m) for m in tallies), default=10)
    lines = [f"{'method':<{width}}  pass/total  strict"]
    for method in sorted(tallies):
        t = tallies[method]
        lines.append(f"{method:<{width}}  {t.passed:>4}/{t.total:<5}  {t.strict:>4}")
        lines.extend(f"{'':<{width}}    FAIL {failure}" for failure in t.failures)
    total = sum(t.total for t in tallies.values())
    passed = sum(t.passed for t in tallies.values())
    strict = sum(t.strict for t in tallies.values())
    lines.append(f"{'TOTAL':<{width}}  {passed:>4}/{total:<5}  {strict:>4}")
    return "\n".join(lines)
