"""Context files sized for a model: each generated file holds at most a budget of characters.

Patterns come most relevant first; each goes in the file it belongs in (render.target_path), greedily:
a pattern that does not fit in its file is left out, with the reason, and the next ones are still
tried. A shared file (AGENTS.md, CLAUDE.md, ...) that left something out ends its section with one
line saying how many patterns it left out and how to find them; that line counts in the budget. A
file is never over the budget: one whose frame alone would be (a very deep folder's file) is not written.
A per-pattern file (a Cursor or Windsurf rule ...) over the budget is left out whole: a rule cut
in the middle would say something its author did not.

Pure: no I/O, no database. Sizes are kept as sections grow (render.Section), so fitting 500
patterns renders each pattern once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from types import MappingProxyType

from mcp_server.errors import InvalidInputError
from mcp_server.rules import render
from mcp_server.schemas import MAX_FILE_CHARS, MIN_FILE_CHARS, ContextFile, Pattern

# The default budget of one file, per format, from what each tool reads:
DEFAULT_MAX_CHARS: Mapping[str, int] = MappingProxyType({
    # Codex reads at most 32 KiB of AGENTS.md (`project_doc_max_bytes`, 32768 by default); kept
    # under it in characters, with room for the few that take more than one byte.
    "agents_md": 32_000,
    # Claude Code warns when CLAUDE.md is over 40,000 characters ("Large CLAUDE.md will impact
    # performance"); the same for each `.claude/rules` file it loads.
    "claude_md": 40_000,
    # Gemini CLI documents no limit and sends every GEMINI.md with every prompt: as AGENTS.md.
    "gemini_md": 32_000,
    # Cursor asks for rules under 500 lines (docs.cursor.com, Rules: best practices), ~32,000
    # characters of real rules.
    "cursor_mdc": 32_000,
    # Copilot code review reads only the first 4,000 characters of an instructions file, but chat and
    # the coding agent read all of it: 4,000 would leave out most patterns for them, so the budget is
    # theirs (pass --max-chars 4000 for files meant for code review).
    "copilot": 32_000,
    # Windsurf (Devin): "Rules files are limited to 12,000 characters each" (docs.windsurf.com,
    # Memories & Rules); Cascade truncates the rest.
    "windsurf": 12_000,
    # Cline documents no limit and joins every `.clinerules` file into one prompt: as AGENTS.md.
    "cline": 32_000,
})


@dataclass(frozen=True)
class Budgeted:
    rendered: render.Rendered  # the files, each within the budget
    included: list[Pattern]  # in the order given
    left_out: list[tuple[Pattern, str]]  # (pattern, reason), in the order given


def check_max_chars(fmt: str, max_chars: int | None) -> int:
    """The budget of one file of `fmt`: `max_chars`, else the format's default."""
    render.check_format(fmt)
    if max_chars is None:
        return DEFAULT_MAX_CHARS[fmt]
    if not MIN_FILE_CHARS <= max_chars <= MAX_FILE_CHARS:
        raise InvalidInputError(f"`max_chars` is {max_chars:,}: a file's budget is between {MIN_FILE_CHARS:,} and "
                                f"{MAX_FILE_CHARS:,} characters (default for {fmt}: {DEFAULT_MAX_CHARS[fmt]:,}).")
    return max_chars


def within_budget(fmt: str, patterns: Sequence[Pattern], max_chars: int | None = None,
                  folders: AbstractSet[str] | None = None) -> Budgeted:
    """The files of `fmt` holding as many of `patterns` (most relevant first) as fit in `max_chars`
    characters per file (default: DEFAULT_MAX_CHARS[fmt]; at most MAX_FILE_CHARS); `folders`, the
    repository's folders when known, keeps nested files in folders that exist (render.target_path)."""
    limit = check_max_chars(fmt, max_chars)
    by_file: dict[str, list[Pattern]] = {}
    for pattern in patterns:
        by_file.setdefault(render.target_path(fmt, pattern, folders), []).append(pattern)
    files: dict[str, ContextFile] = {}
    members: dict[str, list[int]] = {}
    reasons: dict[int, str] = {}
    for path, candidates in by_file.items():
        if render.is_marked_path(path):
            section = _fit_section(fmt, path, candidates, limit, reasons)
            left = len(candidates) - len(section.ids)
            if section.size(left) > limit:  # its frame alone (a deep folder's name is in it twice): not written
                continue
            files[path] = ContextFile(path=path, content=section.content(left), pattern_ids=section.ids)
            members[path] = section.ids
            continue
        [pattern] = candidates  # a file of its own
        content = render.pattern_file(fmt, pattern)
        if len(content) > limit:
            reasons[pattern.id] = (f"its file {path} would have {len(content):,} characters, over the "
                                   f"{limit:,}-character budget of a file")
            continue
        files[path] = ContextFile(path=path, content=content, pattern_ids=[pattern.id])
        members[path] = [pattern.id]
    rendered = render.Rendered(render.ordered(fmt, files), dict(render.OWNED_DIRS[fmt]), members)
    return Budgeted(rendered, [p for p in patterns if p.id not in reasons],
                    [(p, reasons[p.id]) for p in patterns if p.id in reasons])


def _fit_section(fmt: str, path: str, candidates: Sequence[Pattern], limit: int,
                 reasons: dict[int, str]) -> render.Section:
    """The section of shared file `path` with the candidates that fit, in order; the others' reasons
    go in `reasons`. When all fit, no left-out line is needed, so its room is not kept. When some are
    left out, the section is at most `limit` with its left-out line, unless it holds none of them."""
    everything = render.Section(fmt, path)
    for pattern in candidates:
        everything.add(pattern)
    if everything.size() <= limit:
        return everything
    section = everything.fresh()
    room_for_note = section.note_cost(len(candidates))  # at most this many are left out
    frame = section.size() + room_for_note
    for pattern in candidates:
        cost = section.cost(pattern)
        room = limit - room_for_note - section.size()
        if cost <= room:
            section.add(pattern)
        elif frame > limit:
            reasons[pattern.id] = (f"over the {limit:,}-character budget of {path}: its heading and left-out line, "
                                   f"which name the folder, take {frame:,} characters alone")
        else:
            reasons[pattern.id] = (f"over the {limit:,}-character budget of {path} (it needs {cost:,} characters, "
                                   f"{max(room, 0):,} were left)")
    return section
