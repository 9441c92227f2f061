"""A strict reader for the YAML subset the deploy files are written in (PyYAML is not installed here).

Block mappings and sequences by indentation, ``- key: value`` items, plain and
quoted scalars, flow sequences of scalars (``["a", "b"]``), ``{}``, comments,
``---`` between documents, and ``<<: *anchor`` merges of ``&anchor`` mappings
(compose's extension fields). Anything else raises ``YamlError`` with the line,
so a file that strays from the subset fails its test instead of being misread.
"""

from __future__ import annotations

import json
import re
from typing import Any

_KEY = re.compile(r"^([A-Za-z0-9_.\-/<]+|\"[^\"]*\"):(?:\s+(.*))?$")


class YamlError(ValueError):
    pass


def _strip_comment(text: str) -> str:
    quote = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[:index].rstrip()
    return text.rstrip()


def _scalar(text: str, line: int) -> Any:
    text = text.strip()
    if text.startswith('"'):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise YamlError(f"line {line}: bad double-quoted scalar {text!r}") from None
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlError(f"line {line}: bad single-quoted scalar {text!r}")
        return text[1:-1].replace("''", "'")
    if text == "{}":
        return {}
    if text.startswith("["):
        if not text.endswith("]"):
            raise YamlError(f"line {line}: unterminated flow sequence")
        inner = text[1:-1].strip()
        return [] if not inner else [_scalar(part, line) for part in _split_flow(inner, line)]
    if text[:1] in "{|>&*!%@`":
        raise YamlError(f"line {line}: {text!r} is outside the supported subset")
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~", ""):
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _split_flow(inner: str, line: int) -> list[str]:
    parts, current, quote = [], "", None
    for char in inner:
        if quote:
            current += char
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
            current += char
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    if quote:
        raise YamlError(f"line {line}: unterminated quote in flow sequence")
    return [*parts, current]


class _Parser:
    def __init__(self, lines: list[tuple[int, int, str]]) -> None:
        self.lines = lines  # (line number, indent, text)
        self.pos = 0
        self.anchors: dict[str, Any] = {}

    def peek(self) -> tuple[int, int, str] | None:
        return self.lines[self.pos] if self.pos < len(self.lines) else None

    def block(self, indent: int) -> Any:
        head = self.peek()
        if head is None or head[1] < indent:
            return None
        if head[2].startswith("- ") or head[2] == "-":
            return self.sequence(head[1])
        return self.mapping(head[1])

    def sequence(self, indent: int) -> list[Any]:
        items = []
        while (head := self.peek()) is not None and head[1] == indent and (head[2].startswith("- ") or head[2] == "-"):
            number, _, text = head
            rest = text[2:].strip() if text != "-" else ""
            if not rest:
                self.pos += 1
                items.append(self.block(indent + 1))
            elif _KEY.match(rest):
                # "- key: value" opens a mapping whose keys sit at indent + 2
                self.lines[self.pos] = (number, indent + 2, rest)
                items.append(self.mapping(indent + 2))
            else:
                self.pos += 1
                items.append(_scalar(rest, number))
        if (head := self.peek()) is not None and head[1] > indent:
            raise YamlError(f"line {head[0]}: unexpected indentation")
        return items

    def mapping(self, indent: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: set[str] = set()  # keys a ``<<`` merge brought in: the mapping's own keys override them
        while (head := self.peek()) is not None and head[1] == indent:
            number, _, text = head
            match = _KEY.match(text)
            if not match:
                raise YamlError(f"line {number}: expected 'key: value', got {text!r}")
            key = json.loads(match.group(1)) if match.group(1).startswith('"') else match.group(1)
            value_text = (match.group(2) or "").strip()
            self.pos += 1
            anchor = None
            if value_text.startswith("&"):
                anchor, _, value_text = value_text.partition(" ")
                anchor = anchor[1:]
            if key == "<<":
                if not value_text.startswith("*") or value_text[1:] not in self.anchors:
                    raise YamlError(f"line {number}: merge of an unknown anchor {value_text!r}")
                for merged_key, merged_value in self.anchors[value_text[1:]].items():
                    if merged_key not in result:
                        result[merged_key] = merged_value
                        merged.add(merged_key)
                continue
            if key in result and key not in merged:
                raise YamlError(f"line {number}: duplicate key {key!r}")
            merged.discard(key)
            if value_text:
                value = _scalar(value_text, number)
            else:
                following = self.peek()
                if following is not None and following[1] > indent:
                    value = self.block(following[1])
                elif following is not None and following[1] == indent and following[2].startswith("- "):
                    value = self.sequence(indent)  # a sequence may sit at its key's indentation
                else:
                    value = None
            if anchor:
                self.anchors[anchor] = value
            result[key] = value
        if (head := self.peek()) is not None and head[1] > indent:
            raise YamlError(f"line {head[0]}: unexpected indentation")
        return result


def load_all(text: str) -> list[Any]:
    documents: list[list[tuple[int, int, str]]] = [[]]
    for number, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlError(f"line {number}: tab in indentation")
        stripped = _strip_comment(raw)
        if not stripped.strip():
            continue
        if stripped == "---":
            documents.append([])
            continue
        documents[-1].append((number, len(stripped) - len(stripped.lstrip()), stripped.strip()))
    loaded = []
    for lines in documents:
        if not lines:
            continue
        parser = _Parser(lines)
        value = parser.block(lines[0][1])
        if parser.pos != len(lines):
            raise YamlError(f"line {lines[parser.pos][0]}: could not be read")
        loaded.append(value)
    return loaded
