"""Edit a JSON (or JSONC) document in place: only the bytes of the member or element that changes
are rewritten, so everyone else's entries keep their order, indentation, inline style and (JSONC)
comments, and the file keeps its trailing newline.

Parsing is the standard library's `json` on a copy of the text in which comments and trailing commas
are blanked out with spaces (same length, so every offset still points into the original); a small
walk over that copy gives each member's span. This is the approach of VS Code's own `jsonc-parser`
(`modify` + `applyEdits`), which has no maintained Python counterpart that runs without Node.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_server.errors import ConfigurationError

Key = str | int
_WHITESPACE = " \t\r\n"
# A string (kept), a // or /* */ comment (blanked): strings first, so "http://x" is no comment.
_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|/\*[\s\S]*?\*/')
# A string (kept) or a comma followed only by whitespace and a closing bracket (blanked).
_TRAILING_COMMA = re.compile(r'"(?:[^"\\\n]|\\.)*"|,(?=\s*[}\]])')
_DECODER = json.JSONDecoder()


@dataclass
class _Node:
    start: int
    end: int
    members: list[tuple[str, int, _Node]] = field(default_factory=list)  # objects: (key, key start, value)
    elements: list[_Node] = field(default_factory=list)  # arrays
    kind: str = "scalar"  # "object", "array" or "scalar"


class JsonDocument:
    """A JSON object document that can be changed member by member (see the module docstring)."""

    def __init__(self, text: str, path: Path, *, comments: bool) -> None:
        self.path = path
        self.comments = comments
        self.text = text if text.strip() else "{}\n"  # an empty file is an empty document
        self.value: dict[str, Any] = {}
        self._root = self._parse()

    # --- reading ---

    def get(self, keys: Sequence[Key]) -> Any:
        """The value at `keys`, or None when any step is missing."""
        value: Any = self.value
        for key in keys:
            in_list = isinstance(key, int) and isinstance(value, list) and 0 <= key < len(value)
            if not (in_list or (isinstance(key, str) and isinstance(value, dict) and key in value)):
                return None
            value = value[key]
        return value

    # --- changing ---

    def set(self, keys: Sequence[str], value: Any) -> None:
        """Make the member at `keys` hold `value`, creating the objects on the way."""
        node, depth = self._root, 0
        while depth < len(keys):
            if node.kind != "object":
                raise self._error(f"`{'.'.join(keys[:depth])}` is not an object")
            found = next((m for m in node.members if m[0] == keys[depth]), None)
            if found is None:
                nested: Any = value
                for key in reversed(keys[depth + 1:]):
                    nested = {key: nested}
                self._insert_member(node, keys[depth], nested)
                return
            node, depth = found[2], depth + 1
        self._splice(node.start, node.end, self._render(value, self._line_indent(node.start)))

    def append(self, keys: Sequence[str], item: Any) -> None:
        """Append `item` to the array at `keys` (created when missing)."""
        node = self._node(keys)
        if node is None:
            self.set(keys, [item])
            return
        if node.kind != "array":
            raise self._error(f"`{'.'.join(keys)}` is not an array")
        self._insert(node, node.elements, "", item)

    def remove(self, keys: Sequence[Key]) -> None:
        """Remove the member or element at `keys` (nothing when it is not there)."""
        parent = self._node(keys[:-1])
        if parent is None:
            return
        last = keys[-1]
        spans: list[tuple[int, _Node]]
        if parent.kind == "object":
            spans = [(start, node) for _, start, node in parent.members]
            index = next((i for i, m in enumerate(parent.members) if m[0] == last), None)
        elif parent.kind == "array" and isinstance(last, int):
            spans = [(node.start, node) for node in parent.elements]
            index = last if 0 <= last < len(spans) else None
        else:
            return
        if index is None:
            return
        if len(spans) == 1:  # the only one: leave the container empty, `{}` / `[]`
            self._splice(parent.start + 1, parent.end - 1, "")
        elif index > 0:  # from the end of the one before (its comma) to the end of this one
            self._splice(spans[index - 1][1].end, spans[index][1].end, "")
        else:  # the first of several: from its start to the start of the next
            self._splice(spans[0][0], spans[1][0], "")

    # --- the text ---

    def _insert_member(self, node: _Node, key: str, value: Any) -> None:
        self._insert(node, [m[2] for m in node.members], json.dumps(key, ensure_ascii=False) + ": ", value,
                     first_start=node.members[0][1] if node.members else None)

    def _insert(self, node: _Node, siblings: list[_Node], prefix: str, value: Any,
                first_start: int | None = None) -> None:
        """Insert `prefix + value` after the last sibling, in the style the container already has."""
        if not siblings:
            indent = self._line_indent(node.start)
            inner = indent + self._indent_unit()
            text = f"\n{inner}{prefix}{self._render(value, inner)}\n{indent}"
            self._splice(node.start + 1, node.end - 1, text)
            return
        first = siblings[0].start if first_start is None else first_start
        if "\n" not in self.text[node.start:first]:  # written on one line: stay inline
            self._splice(siblings[-1].end, siblings[-1].end, f", {prefix}{json.dumps(value, ensure_ascii=False)}")
            return
        indent = self._line_indent(first)
        self._splice(siblings[-1].end, siblings[-1].end, f",\n{indent}{prefix}{self._render(value, indent)}")

    def _render(self, value: Any, indent: str) -> str:
        return json.dumps(value, indent=self._indent_unit(), ensure_ascii=False).replace("\n", "\n" + indent)

    def _indent_unit(self) -> str:
        """The file's own indentation step (two spaces for a new or one-line file)."""
        match = re.search(r"\n([ \t]+)\S", self.text)
        return match.group(1) if match else "  "

    def _line_indent(self, offset: int) -> str:
        line_start = self.text.rfind("\n", 0, offset) + 1
        line = self.text[line_start:offset]
        return line[: len(line) - len(line.lstrip(" \t"))]

    def _splice(self, start: int, end: int, text: str) -> None:
        self.text = self.text[:start] + text + self.text[end:]
        self._root = self._parse()

    def _node(self, keys: Sequence[Key]) -> _Node | None:
        node = self._root
        for key in keys:
            if node.kind == "object" and isinstance(key, str):
                found = next((m[2] for m in node.members if m[0] == key), None)
            elif node.kind == "array" and isinstance(key, int) and 0 <= key < len(node.elements):
                found = node.elements[key]
            else:
                found = None
            if found is None:
                return None
            node = found
        return node

    # --- parsing ---

    def _parse(self) -> _Node:
        plain = self._blanked()
        try:
            value = json.loads(plain)
        except json.JSONDecodeError as exc:
            hint = "" if self.comments else " (this client reads plain JSON: no comments or trailing commas)"
            raise self._error(f"it is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{hint}. "
                              "Fix or move the file, then run the command again") from None
        if not isinstance(value, dict):
            raise self._error("its top level is not a JSON object. Fix or move the file, then run the command again")
        self.value = value
        node, _ = _walk(plain, _skip(plain, 0))
        return node

    def _blanked(self) -> str:
        if not self.comments:
            return self.text

        def blank(match: re.Match[str]) -> str:
            token = match.group(0)
            return token if token.startswith('"') else re.sub(r"[^\n]", " ", token)

        return _TRAILING_COMMA.sub(blank, _COMMENT.sub(blank, self.text))

    def _error(self, what: str) -> ConfigurationError:
        return ConfigurationError(f"{self.path}: {what}; nothing was written.")


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


def _walk(text: str, at: int) -> tuple[_Node, int]:
    """The span tree of the (already validated) value starting at `at`, and the offset after it."""
    if text[at] == "{":
        node, at = _Node(at, at, kind="object"), _skip(text, at + 1)
        while text[at] != "}":
            key, after_key = _DECODER.raw_decode(text, at)
            key_start = at
            value, at = _walk(text, _skip(text, _skip(text, after_key) + 1))  # past the colon
            node.members.append((key, key_start, value))
            at = _skip(text, at)
            if text[at] == ",":
                at = _skip(text, at + 1)
        node.end = at + 1
        return node, at + 1
    if text[at] == "[":
        node, at = _Node(at, at, kind="array"), _skip(text, at + 1)
        while text[at] != "]":
            element, at = _walk(text, at)
            node.elements.append(element)
            at = _skip(text, at)
            if text[at] == ",":
                at = _skip(text, at + 1)
        node.end = at + 1
        return node, at + 1
    _, end = _DECODER.raw_decode(text, at)
    return _Node(at, end), end
