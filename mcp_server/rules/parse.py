"""What a rule file means: the patterns in the text of one file (pure: no I/O).

Supported: Cursor `.mdc` (front matter `description`, `globs` as a string or a list,
`alwaysApply`), legacy `.cursorrules`, Copilot `*.instructions.md` (`applyTo`, `description`,
`excludeAgent`: kept as `metadata.exclude_agent`) and `copilot-instructions.md`, `AGENTS.md` /
`CLAUDE.md` / `GEMINI.md` (split into one pattern per `##` section), and any other markdown (one
pattern; optional YAML front matter with title, tags, strategy_type, target_contexts, author,
metadata, project: the format `patterns export` writes).

Rule folders, recognised by the folders a file is in (its `source_path`, at any depth of the
repository), each a file per rule:
- `.claude/rules/` (and its sub-folders, which Claude Code reads too): `paths:` a list of globs
  (or one string, split at commas outside braces) -> "auto"; no `paths` -> "always". Claude Code
  reads no other key (`globs:` there is ignored, as Claude Code ignores it).
- `.windsurf/rules/`: `trigger:` `always_on` -> "always", `glob` -> "auto" with `globs:` (a
  comma-separated string or a list), `model_decision` -> "requested" (Cascade reads the
  `description`), `manual` -> "manual"; no `trigger` -> "always". Another trigger, or `glob`
  without globs, is a RuleFileError.
- `.clinerules/`: `paths:` as Claude Code's (Cline's conditional rules); none -> "always".
Their globs are minimatch-style from the repository root, as Cursor's, and converted the same way.
Their patterns record `metadata.format` `claude_rule`, `windsurf_rule` or `cline_rule`. The files
`context generate` writes there (`aletheia-*`) are skipped before they get here (rules/sync.py).

Titles: the front matter's `title` (as written), else its `description`, else the first heading, else
the file's name (a bare dot-name like `.cursor`: the first line of text); made plain (no `**`, no
backticks) and cut at a word to MAX_TITLE_CHARS. Sectioned files are titled by their headings.

Globs: the tools' globs (Cursor's `globs`, Claude Code's and Cline's `paths`, Windsurf's `globs`,
Copilot's `applyTo`) mean other things than the stored (canonical) globs, so they are converted
(rules/dialects.py): Cursor's `Makefile` is the root's (`/Makefile`), Copilot's `src/**/*.ts` is
at any depth (`**/src/**/*.ts`) and ignoring case (`metadata.globs_ignore_case`). Other files'
`target_contexts` are canonical already.

The tools' rules record when they apply as `metadata.attach` ("always", "auto", "requested",
"manual": see rules/render.py); a rule that is not attached automatically has no globs and is
never found by a file's path, only by a query.

Front matter is YAML; the tools' files are also read leniently when it is not (people write
`globs: *.tsx` and `- **/*.ts` unquoted, which YAML takes for aliases): `key: value` lines, `- item`
lines under a key, `[a, b]` lists.

A pattern's import identity is (project, source_path, title); sync.source_path_of says what the path is.
Drafts hold what the file says; the service that stores them validates it (services/rule_files.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml
from markdown_it import MarkdownIt

from mcp_server.errors import RuleFileError
from mcp_server.rules.dialects import from_copilot, from_cursor
from mcp_server.rules.render import MARKED_NAMES, strip_marked
from mcp_server.schemas import MAX_TITLE_CHARS

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
SECTIONED_NAMES = frozenset(name.lower() for name in MARKED_NAMES)  # the shared files we generate, too
_INLINE = MarkdownIt("commonmark").enable("strikethrough")
_SEEN_TOKENS = {"text", "code_inline", "image"}  # what a reader sees of a line (an image: its alt text)
_LINE_TITLE_CHARS = 100  # a title made from a file's first line of text
_LIST_MARK = re.compile(r"\A(?:[-*+>]|\d{1,9}[.)])[ \t]+")


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
    """The tools' front matter when YAML rejects it: people write `globs: *.tsx` and `- **/*.ts`
    unquoted (YAML aliases). Reads `key: value` lines, `- item` lines under a key without a value,
    and `[a, b]` values (split outside braces)."""
    values: dict[str, Any] = {}
    list_key: str | None = None  # the key whose `- item` lines may follow
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if list_key is not None and stripped.startswith("-"):
            item = _unquoted(stripped[1:].strip())
            values[list_key] = [*(values[list_key] or []), *([item] if item else [])]
            continue
        key, sep, value = line.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z_][\w-]*", key.strip()):
            raise RuleFileError(f"front matter line {number} is not `key: value`: {stripped[:80]!r}")
        key, value = key.strip(), value.strip()
        list_key = key if not value else None
        if len(value) >= 2 and value[0] == "[" and value[-1] == "]":
            values[key] = [_unquoted(v.strip()) for v in _split_outside_braces(value[1:-1]) if v.strip()]
        else:
            value = _unquoted(value)
            values[key] = {"true": True, "false": False}.get(value.lower(), value)
    return values


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


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
    shown = value if isinstance(value, list) else f"{value!r} ({type(value).__name__})"
    raise RuleFileError(f"`{field}` must be a glob string or a list of globs (quoted, e.g. \"src/**/*.ts\"), "
                        f"not {str(shown)[:80]}")


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


def _within(text: str, limit: int) -> str:
    """`text` on one line, cut after a whole word (and marked with an ellipsis) to fit `limit`."""
    words = " ".join(text.split())
    if len(words) <= limit:
        return words
    cut = words[:limit - 1]
    if words[limit - 1] != " " and " " in cut:
        cut = cut[:cut.rindex(" ")]
    return cut.rstrip() + "…"


def _plain(markdown: str) -> str:
    """The words of a line of markdown without its marks: `**Persona**`, `` `make` ``, links, HTML tags."""
    source = " ".join(markdown.split())[:MAX_TITLE_CHARS + 60]  # bounded parsing time; the title is cut anyway
    children = [child for block in _INLINE.parseInline(source) for child in block.children or ()]
    words = " ".join("".join(c.content for c in children if c.type in _SEEN_TOKENS).split())
    return words or source


def _title(markdown: str, limit: int = MAX_TITLE_CHARS) -> str:
    return _within(_plain(markdown), limit)


def _stated_title(front: dict[str, Any]) -> str | None:
    """The front matter's `title` (as written: `patterns export` writes it back), else its `description`."""
    if front.get("title"):
        title = str(front["title"])
        return title if len(title) <= MAX_TITLE_CHARS else _within(title, MAX_TITLE_CHARS)
    if front.get("description"):
        return _title(str(front["description"]))
    return None


def _name_title(name: str, body: str) -> str:
    """The title of a file that states none: its name, unless that is a bare dot-name (`.cursor`) or
    empty, which says nothing of the rule: then its first line of text."""
    if name and not name.startswith("."):
        return name
    for line in body.splitlines():
        if line.strip():
            return _title(_LIST_MARK.sub("", line.strip()), _LINE_TITLE_CHARS)
    return name


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
    heading = _title(title) if title else fallback_title
    sections: list[tuple[str, str]] = []
    current_title = heading
    current_lines: list[str] = []
    for line in rest.split("\n"):
        found = _heading(line)
        if found is not None and found[0] == 2:
            if "\n".join(current_lines).strip():
                sections.append((current_title, "\n".join(current_lines).strip()))
            current_title, current_lines = _title(found[1]), []
        else:
            current_lines.append(line)
    if "\n".join(current_lines).strip():
        sections.append((current_title, "\n".join(current_lines).strip()))
    seen: dict[str, int] = {}
    unique = []
    for section_title, content in sections:  # (source_path, title) is the identity: keep titles unique
        seen[section_title] = seen.get(section_title, 0) + 1
        suffix = "" if seen[section_title] == 1 else f" ({seen[section_title]})"
        unique.append((_within(section_title, MAX_TITLE_CHARS - len(suffix)) + suffix, content))
    return unique


def _attach(always: bool | None, globs: list[str], description: Any) -> str:
    """The attach mode (rules/render.py) of a Cursor or Copilot rule: always on, auto attached by its
    globs, or neither: then requested by the agent when it has a description, else manual. (VS Code
    never attaches a Copilot file without `applyTo`; `applyTo: "**"` is every file.)"""
    if globs:
        return "auto"
    if always:
        return "always"
    return "requested" if description else "manual"


# Folders a tool reads one rule per file from: (the folders' names, the format, whether the tool
# reads their sub-folders too: Claude Code does, by its documentation).
_RULE_FOLDERS: tuple[tuple[tuple[str, ...], str, bool], ...] = (
    ((".claude", "rules"), "claude_rule", True),
    ((".windsurf", "rules"), "windsurf_rule", False),
    ((".clinerules",), "cline_rule", False),
)
# Windsurf's (and Devin's) `trigger` -> attach mode (rules/render.py writes it back).
WINDSURF_TRIGGERS = {"always_on": "always", "glob": "auto", "model_decision": "requested", "manual": "manual"}
_LENIENT_KINDS = frozenset({"cursor_mdc", "copilot_instructions", "claude_rule", "windsurf_rule", "cline_rule"})


def folder_format(source_path: str) -> str | None:
    """The format of a markdown rule file by the folders it is in (`.claude/rules/`, `.windsurf/rules/`,
    `.clinerules/`, anywhere in the repository), else None."""
    folders = PurePosixPath(source_path).parent.parts
    for wanted, fmt, nested in _RULE_FOLDERS:
        size = len(wanted)
        starts = range(len(folders) - size + 1) if nested else [len(folders) - size]
        if any(start >= 0 and folders[start:start + size] == wanted for start in starts):
            return fmt
    return None


def _kind(name: str, source_path: str) -> str:
    if name.endswith(".mdc"):
        return "cursor_mdc"
    if name == ".cursorrules":
        return "cursorrules"
    if name.endswith(".instructions.md"):
        return "copilot_instructions"
    in_folder = folder_format(source_path) if name.endswith(".md") else None
    return in_folder or ("sectioned" if name in SECTIONED_NAMES else "markdown")


def _windsurf_attach(front: dict[str, Any]) -> tuple[list[str], str]:
    """(globs, attach mode) of a Windsurf rule, from its `trigger` (none: always on, as a plain file)."""
    trigger = front.get("trigger")
    if trigger is None or trigger == "":
        return [], "always"
    if not isinstance(trigger, str) or trigger.strip() not in WINDSURF_TRIGGERS:
        raise RuleFileError(f"`trigger: {str(trigger)[:40]}` is not a Windsurf trigger: use one of "
                            f"{', '.join(WINDSURF_TRIGGERS)}")
    mode = WINDSURF_TRIGGERS[trigger.strip()]
    if mode != "auto":
        return [], mode  # (Windsurf reads `globs` only for `trigger: glob`)
    globs = from_cursor(_globs(front.get("globs"), "globs"))
    if not globs:
        raise RuleFileError("`trigger: glob` needs `globs:` (the files the rule applies to, comma-separated, e.g. "
                            "`globs: src/**/*.ts, *.md`); or use `trigger: always_on`, `model_decision` or `manual`")
    return globs, mode


def parse_rule_file(file_name: str, source_path: str, text: str) -> list[RuleDraft]:
    """The patterns in one rule file named `file_name` at `source_path` (relative to the repository
    root: its folders say whether a markdown file is a Claude Code, Windsurf or Cline rule);
    RuleFileError says why it cannot be imported."""
    name = file_name.lower()
    text = strip_marked(text.replace("\r\n", "\n"))
    if "\x00" in text:
        raise RuleFileError("the file contains NUL characters (binary?)")
    kind = _kind(name, source_path)
    front, body = split_front_matter(text, lenient=kind in _LENIENT_KINDS)
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
        globs = [] if always else from_cursor(_globs(front.get("globs"), "globs"))
        meta["attach"] = _attach(always or None, globs, front.get("description"))
    elif kind == "copilot_instructions":
        globs, every_file = from_copilot(_globs(front.get("applyTo"), "applyTo"))
        meta["attach"] = _attach(every_file or None, globs, front.get("description"))
        meta["globs_ignore_case"] = True  # VS Code matches applyTo ignoring case
        if front.get("excludeAgent"):
            meta["exclude_agent"] = str(front["excludeAgent"])
    elif kind in ("claude_rule", "cline_rule"):  # `paths`: loaded for the files they match; none: always
        globs = from_cursor(_globs(front.get("paths"), "paths"))
        meta["attach"] = "auto" if globs else "always"
    elif kind == "windsurf_rule":
        globs, meta["attach"] = _windsurf_attach(front)
    elif kind == "cursorrules":
        globs = []
    else:
        globs = _globs(front.get("target_contexts"), "target_contexts")

    fallback = file_name.removesuffix(".instructions.md").removesuffix(".mdc").removesuffix(".md")
    fallback = "Cursor rules" if kind == "cursorrules" else fallback
    if kind == "sectioned":  # titled by their sections' headings
        pieces = _sections(body, str(front.get("title") or fallback))
    else:
        # The front matter's title or description says what the rule is about better than a first
        # heading (often generic: "Persona") or the file's name; the body then stays whole.
        heading, rest = _first_heading(body)
        stated = _stated_title(front)
        if stated:
            pieces = [(stated, body.strip())]
        elif heading:
            pieces = [(_title(heading), rest.strip())]
        else:
            pieces = [(_name_title(fallback, body), body.strip())]
    pieces = [(t, c) for t, c in pieces if c]
    if not pieces:
        raise RuleFileError("the file has no content")
    return [RuleDraft(title=title, content=content, source_path=source_path, target_contexts=globs,
                      metadata=meta, **common) for title, content in pieces]
