"""The execution-apis specification as hypothesis strategies: valid and invalid params per method.

Reads the OpenRPC method and schema sources (``src/*/*.yaml``) of the execution-apis
checkout in ``shared/``, resolves ``$ref``s, and turns each JSON schema into a
strategy (patterns through ``from_regex``, objects with their required and optional
properties, ``oneOf``/``anyOf`` as alternatives). Invalid params are valid ones with
one argument replaced by arbitrary JSON, a required one dropped, or one too many.
The documented error codes are those of the spec's error groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

SPEC = Path(__file__).resolve().parents[3] / "shared" / "execution-apis-spec" / "src"
METHOD_DIRS = ("eth", "debug", "txpool")
MAX_DEPTH = 12
"""Schemas nest (a block holds transactions holding access lists); deeper alternatives stop here."""

arbitrary_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**260), st.text(max_size=12),
              st.sampled_from(["0x", "0x0", "latest", "0xzz", "-0x1", "0x" + "f" * 80, ""])),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=8,
)
"""Anything JSON, with the near-misses of Ethereum's hex encodings among the scalars."""


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: tuple[tuple[dict[str, Any], bool], ...]
    """Each positional parameter's schema and whether it is required."""


class Spec:
    """The methods, schemas and documented error codes of the execution-apis specification."""

    def __init__(self, root: Path = SPEC) -> None:
        self.root = root
        self.schemas: dict[str, Any] = {}
        for path in sorted((root / "schemas").glob("*.yaml")):
            self.schemas.update(yaml.safe_load(path.read_text()))

    @cached_property
    def methods(self) -> dict[str, MethodSpec]:
        found: dict[str, MethodSpec] = {}
        for directory in METHOD_DIRS:
            for path in sorted((self.root / directory).glob("*.yaml")):
                for method in yaml.safe_load(path.read_text()):
                    params = tuple((p["schema"], bool(p.get("required"))) for p in method.get("params", []))
                    found[method["name"]] = MethodSpec(method["name"], params)
        return found

    @cached_property
    def error_codes(self) -> frozenset[int]:
        codes: set[int] = set()
        for path in sorted((self.root / "error-groups").glob("*.yaml")):
            for group in yaml.safe_load(path.read_text()).values():
                codes.update(int(error["code"]) for error in group.get("errors", []))
        return frozenset(codes)

    def valid_params(self, method: str) -> st.SearchStrategy[list[Any]]:
        """Params as the spec describes them: every required one, then some of the optional ones."""
        params = self.methods[method].params
        required = [self.strategy(schema) for schema, needed in params if needed]
        optional = [self.strategy(schema) for schema, needed in params if not needed]
        return st.integers(0, len(optional)).flatmap(
            lambda extra: st.tuples(*required, *optional[:extra]).map(list))

    def invalid_params(self, method: str) -> st.SearchStrategy[list[Any]]:
        """Valid params with one broken: an argument replaced by arbitrary JSON, the last dropped, one added."""
        valid = self.valid_params(method)
        replaced = st.tuples(valid, st.integers(0, 5), arbitrary_json).map(
            lambda t: [t[2] if i == t[1] % max(len(t[0]), 1) else v for i, v in enumerate(t[0])] or [t[2]])
        return st.one_of(replaced, valid.map(lambda p: p[:-1]), st.tuples(valid, arbitrary_json).map(lambda t: [*t[0], t[1]]))

    def strategy(self, schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
        """A strategy for JSON values valid under ``schema`` (an OpenRPC JSON schema)."""
        if depth > MAX_DEPTH or not isinstance(schema, dict):
            return st.none()
        if "$ref" in schema:
            return self.strategy(self.schemas[schema["$ref"].rsplit("/", 1)[-1]], depth + 1)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return st.one_of(*(self.strategy(s, depth + 1) for s in schema[key]))
        if "allOf" in schema:
            parts = [self.strategy(s, depth + 1) for s in schema["allOf"]]
            return st.tuples(*parts).map(_merge)
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        if "const" in schema:
            return st.just(schema["const"])
        return self._typed(schema, depth)

    def _typed(self, schema: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        kind = schema.get("type")
        if isinstance(kind, list):
            return st.one_of(*(self._typed({**schema, "type": k}, depth) for k in kind))
        if kind == "string":
            pattern = schema.get("pattern")
            return st.from_regex(pattern, fullmatch=True) if pattern else st.text(max_size=16)
        if kind == "array":
            return st.lists(self.strategy(schema.get("items", {}), depth + 1), max_size=3)
        if kind == "object":
            properties = schema.get("properties", {})
            required = set(schema.get("required", ())) & properties.keys()
            return st.fixed_dictionaries(
                {k: self.strategy(properties[k], depth + 1) for k in required},
                optional={k: self.strategy(v, depth + 1) for k, v in properties.items() if k not in required})
        if kind in ("number", "integer"):
            low, high = schema.get("minimum", 0), schema.get("maximum", 2**32)
            return st.integers(int(low), int(high)) if kind == "integer" else st.floats(low, high)
        if kind == "boolean":
            return st.booleans()
        return st.none()


def _merge(parts: tuple[Any, ...]) -> Any:
    """allOf of objects: one object with every part's members (anything else: the first part)."""
    if all(isinstance(part, dict) for part in parts):
        merged: dict[str, Any] = {}
        for part in parts:
            merged.update(part)
        return merged
    return parts[0]
