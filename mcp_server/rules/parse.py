"""What a rule file means: the patterns in the text of one file (pure: no I/O).

Supported: Cursor `.mdc` (front matter `description`, `globs` as a string or a list,
`alwaysApply`), legacy `.cursorrules`, Copilot `*.instructions.md` (`applyTo`, `description`)
and `copilot-instructions.md`, `AGENTS.md` / `CLAUDE.md` (split into one pattern per `##`
section), and any other markdown (one pattern; optional YAML front matter with title, tags,
strategy_type, target_contexts, author, metadata, project: the format `patterns export` writes).

A pattern's import identity is (project, source_path, title); sync.source_path_of says what the path is.
Drafts hold what the file says; the service that stores them validates it (services/rule_files.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from mcp_server.errors import RuleFileError
from mcp_server.rules.render import strip_marked

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
SECTIONED_NAMES = {"agents.md", "claude.md", "copilot-instructions.md"}


@dataclass(frozen=True)
class RuleDraft:
    """One pattern as a rule file states it (tags, strategy_type, author: as written, unchecked)."""

    title: str
    content: str
    source_path: str
    target_contexts: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: Any = None
    strategy_type: Any = None
    author: Any = None
    names_project: bool = False  # the front matter has `project` (an exported pattern's; null: global)
    project: Any = None


def _lenient_front_matter(text: str) -> dict[str, Any]:
    """Cursor and Copilot write `globs: *.tsx` unquoted, which YAML rejects: read `key: value` lines."""
    values: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z_][\w-]*", key.strip()):
            raise RuleFileError(f"front matter line {number} is not `key: value`: {line.strip()[:80]!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = {"true": True, "false": False}.get(value.lower(), value)
    return values


def split_front_matter(text: str, lenient: bool) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        return {}, text
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise RuleFileError("front matter starts with `---` but is not closed by a `---` line")
    raw, body = match.group(1), text[match.end():]
    try:
        data = yaml.safe_load(raw) if raw.strip() else {}
    except yaml.YAMLError as exc:
        if not lenient:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 2})" if mark is not None else ""
            raise RuleFileError(f"front matter is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
        data = _lenient_front_matter(raw)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RuleFileError("front matter must be a mapping of `key: value` lines")
    return data, body


def _globs(value: Any, field: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):  # `*.tsx, src/**/*.{ts,js}`: commas inside braces are the glob's own
        return [g.strip() for g in _split_outside_braces(value) if g.strip()]
    if isinstance(value, list) and all(isinstance(g, str) for g in value):
        return value
    raise RuleFileError(f"`{field}` must be a glob string or a list of globs")


def _heading(line: str) -> tuple[int, str] | None:
    """(level, title) of an ATX heading line (`## Title ##`), else None.

    Plain string operations, not a regular expression: rule files are untrusted, and the regex this
    replaces backtracked cubically on a heading padded with spaces (7 s for 2,000 of them)."""
    level = len(line) - len(line.lstrip("#"))
    if not 1 <= level <= 6 or len(line) == level or line[level] not in " \t":
        return None
    text = line[level:].strip()
    title = text.rstrip("#").rstrip() or text  # closing hashes are decoration (`## Title ##`)
    return (level, title) if title else None


def _split_outside_braces(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _first_heading(body: str) -> tuple[str | None, str]:
    """The first `#` heading (as a title, when nothing but blank lines comes before it) and the body
    without it."""
    offset = 0
    for line in body.splitlines(keepends=True):
        if line.strip():
            found = _heading(line.rstrip("\r\n"))
            if found is None:
                return None, body
            return found[1], body[offset + len(line.rstrip("\r\n")):]
        offset += len(line)
    return None, body


def _sections(body: str, fallback_title: str) -> list[tuple[str, str]]:
    """(title, content) for the intro and each `##` section of an AGENTS.md-style file."""
    title, rest = _first_heading(body)
    heading = title or fallback_title
    sections: list[tuple[str, str]] = []
    current_title = heading
    current_lines: list[str] = []
    for line in rest.split("\n"):
        found = _heading(line)
        if found is not None and found[0] == 2:
            if "\n".join(current_lines).strip():
                sections.append((current_title, "\n".join(current_lines).strip()))
            current_title, current_lines = found[1], []
        else:
            current_lines.append(line)
    if "\n".join(current_lines).strip():
        sections.append((current_title, "\n".join(current_lines).strip()))
    seen: dict[str, int] = {}
    unique = []
    for section_title, content in sections:  # (source_path, title) is the identity: keep titles unique
        seen[section_title] = seen.get(section_title, 0) + 1
        unique.append((section_title if seen[section_title] == 1 else f"{section_title} ({seen[section_title]})",
                       content))
    return unique


def parse_rule_file(file_name: str, source_path: str, text: str) -> list[RuleDraft]:
    """The patterns in one rule file named `file_name`; RuleFileError says why it cannot be imported."""
    name = file_name.lower()
    text = strip_marked(text.replace("\r\n", "\n"))
    if "\x00" in text:
        raise RuleFileError("the file contains NUL characters (binary?)")
    kind = ("cursor_mdc" if name.endswith(".mdc") else "cursorrules" if name == ".cursorrules"
            else "copilot_instructions" if name.endswith(".instructions.md") else
            "sectioned" if name in SECTIONED_NAMES else "markdown")
    front, body = split_front_matter(text, lenient=kind in {"cursor_mdc", "copilot_instructions"})
    meta = dict(front.get("metadata") or {}) if isinstance(front.get("metadata"), dict) else {}
    if "metadata" in front and not isinstance(front["metadata"], dict):
        raise RuleFileError("`metadata` in the front matter must be a mapping")
    meta.setdefault("format", kind)  # an exported pattern keeps the format it was first imported from
    if front.get("description"):
        meta["description"] = str(front["description"])
    common: dict[str, Any] = {"tags": front.get("tags"), "strategy_type": front.get("strategy_type"),
                              "author": front.get("author"), "names_project": "project" in front,
                              "project": front.get("project")}

    if kind == "cursor_mdc":
        always = front.get("alwaysApply") is True
        meta["always_apply"] = always
        globs = [] if always else _globs(front.get("globs"), "globs")
    elif kind == "copilot_instructions":
        globs = [g for g in _globs(front.get("applyTo"), "applyTo") if g not in ("**", "**/*", "*")]
    elif kind == "cursorrules":
        globs = []
    else:
        globs = _globs(front.get("target_contexts"), "target_contexts")

    fallback = file_name.removesuffix(".instructions.md").removesuffix(".mdc").removesuffix(".md")
    fallback = "Cursor rules" if kind == "cursorrules" else fallback
    if kind == "sectioned":
        pieces = _sections(body, str(front.get("title") or fallback))
    else:
        heading, rest = _first_heading(body)
        title = str(front["title"]) if front.get("title") else heading or fallback
        pieces = [(title, (rest if heading and not front.get("title") else body).strip())]
    pieces = [(t, c) for t, c in pieces if c]
    if not pieces:
        raise RuleFileError("the file has no content")
    return [RuleDraft(title=title, content=content, source_path=source_path, target_contexts=globs,
                      metadata=meta, **common) for title, content in pieces]
