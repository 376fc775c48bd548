"""Each tool's globs, converted to the canonical form (rules/globs.py) on import and back on generation.

Every glob is stored in one canonical form: gitignore-style, relative to the repository root,
case-sensitive, braces are alternatives, a glob without a slash matches at any depth unless it
starts with `/` (`/Makefile`: the root's only), and a glob matching a folder matches everything in
it. Cursor, Claude Code, Windsurf and Cline (minimatch-style) and Copilot (VS Code's glob) mean
other things by the same text, so a rule file's globs are converted when it is imported, and the
stored globs converted back when a rule file is generated, so that the file means the same to its
tool.

| tool glob | the tool's meaning | canonical (stored) |
|---|---|---|
| Cursor `Makefile`, `*.cmake` | at the root only | `/Makefile`, `/*.cmake` |
| Cursor `src/**/*.ts`, `**/*.ts` | from the root | the same |
| Cursor `src/*` | the files directly in `src/` | `src/*`, `!src/*/**` |
| Cursor `docs/` | (minimatch: folders only) | `docs/**`: everything under `docs/` |
| Cursor `./x`, `/x` | (minimatch: never) | `/x`: the root's, as if written `x` |
| Cursor `!src/gen/**`, anywhere in a list | excluded from the whole list | `!src/gen/**`, after the includes |
| Copilot `*`, `**`, `**/*` | every file | no glob: the pattern always applies |
| Copilot `src/**/*.ts`, `*.py` | any depth (`**/` prepended), any case | `**/src/**/*.ts`, `**/*.py` (1) |
| Copilot `src/*` | files directly in any `src/` | `**/src/*`, `!**/src/*/**` (1) |
| Copilot `/src/*.ts` | (VS Code: the absolute path: never) | `src/*.ts`: the workspace root (1) |

(1) and `metadata.globs_ignore_case: true`: the pattern matches ignoring case.

Back to the tools (`to_root_relative` for Cursor, Claude Code `paths:`, Windsurf `globs:` and Cline
`paths:`; `to_copilot` for `applyTo`):

| canonical | root-relative tools | Copilot `applyTo` |
|---|---|---|
| `*.py` (any depth) | `**/*.py` | `**/*.py` |
| `/Makefile` | `Makefile` | `Makefile`: any depth, *widened* (Copilot cannot anchor at the root) |
| `api/*.py` | `api/*.py` | `api/*.py`: any depth, *widened* |
| `**/src/**/*.ts` | the same | the same |
| `tests`, `src/web` (a folder-like name) | also `tests/**` (`**/tests`, `**/tests/**`) | likewise |
| `src/*` alone (git: everything under `src/`) | `src/*`, `src/*/**` | likewise (widened) |
| `src/*` with `!src/*/**` | `src/*` | `src/*` (widened) |
| `!src/gen/**` (another exclusion) | not written: returned as `excluded`, for the body to say | likewise |

Deviations, documented: a folder whose name looks like a file (`x.ts/`, a folder `Makefile`) is
matched by the canonical glob and its files are too (the tools match files only); Cursor's `*`
and `**` are taken to match dot-files, as VS Code's (Cursor's own matcher is not public; minimatch
would need `dot: true`); case-insensitivity cannot be written in root-relative globs (a pattern
imported from Copilot keeps its spelled case there); `!glob` in a tool's list (Copilot's too) is an
exclusion from the whole list wherever it is written (the author's evident meaning, and fast-glob's
and globby's reading of a list; gulp reads one in order, and minimatch has none), so an include
written after it does not take files back; `{1..3}` ranges and extglobs (`+(a|b)`) are not supported.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcp_server.rules.globs import canonical, expand_braces, glob_matches, root_anchored

EVERY_FILE = ("*", "**", "**/*")  # VS Code: these mean every file, whatever the files' depth
_SAMPLE_WILDCARD = re.compile(r"\*+|\?|\[[^\]]*\]")  # what a sample file name puts a letter for
# Formats whose globs name files only (a folder-like name is a file's): their patterns need no `/**`.
FILE_GLOB_FORMATS = frozenset({"cursor_mdc", "copilot_instructions", "claude_rule", "windsurf_rule", "cline_rule"})


@dataclass(frozen=True)
class Converted:
    """Stored globs in a tool's dialect."""

    globs: list[str]  # to write in the tool's field, in order
    # Exclusions (canonical, without their `!`) the tool's field cannot say: a generated file should
    # say "Does not apply to: ..." in its body, else the rule applies to them too.
    excluded: list[str] = field(default_factory=list)
    # Canonical globs written wider than they mean (Copilot cannot anchor at the root).
    widened: list[str] = field(default_factory=list)


def globs_name_files(metadata: Mapping[str, Any] | None) -> bool:
    """Were a pattern's globs imported from a tool that matches files only (Cursor, Copilot, Claude
    Code, Windsurf, Cline)? Then a folder-like name (`Makefile`) is a file's, and generation needs no
    `<glob>/**` beside it."""
    return (metadata or {}).get("format") in FILE_GLOB_FORMATS


# --- import ---------------------------------------------------------------------------------------

def from_cursor(globs: Iterable[str]) -> list[str]:
    """Cursor's `globs` (minimatch, relative to the repository root, files only) in canonical form:
    a glob without a slash is the root's (`Makefile` -> `/Makefile`)."""
    return _ordered(group for glob in globs for group in _from_root_relative(glob))


def from_copilot(apply_to: Iterable[str]) -> tuple[list[str], bool]:
    """Copilot's `applyTo` (VS Code: a glob not starting with `/` or `**/` matches at any depth;
    ignoring case, which the caller records as `metadata.globs_ignore_case`) in canonical form,
    and whether it means every file (`*`, `**` or `**/*` among them: then no glob is needed)."""
    groups: list[list[str]] = []
    for raw in apply_to:
        text = _clean(raw)
        if text.removeprefix("!") in EVERY_FILE:
            if text.startswith("!"):
                continue  # "not every file": nothing to apply to
            return [], True
        if text:
            groups.extend(_from_copilot_glob(text))
    return _ordered(groups), False


def _clean(glob: str) -> str:
    return glob.strip().replace("\\", "/")


def _from_root_relative(raw: str) -> list[list[str]]:
    text = _clean(raw)
    negated = text.startswith("!")
    text = _strip_root(text.removeprefix("!").strip())
    if not text:
        return []
    return _canonical_alternatives(text, negated, root_anchored)


def _from_copilot_glob(text: str) -> list[list[str]]:
    negated = text.startswith("!")
    text = text.removeprefix("!").strip()
    if text.startswith(("/", "./")):  # the workspace root (a decision: VS Code would never match it)
        return _canonical_alternatives(_strip_root(text), negated, root_anchored)
    if not text.startswith("**/"):
        text = "**/" + text  # as VS Code does
    return _canonical_alternatives(text, negated, _as_is)


def _as_is(glob: str) -> str:
    return glob


def _strip_root(text: str) -> str:
    while text.startswith("./"):
        text = text[2:]
    return text.lstrip("/")


def _canonical_alternatives(text: str, negated: bool, anchor: Callable[[str], str]) -> list[list[str]]:
    """`text` (a tool's glob, made relative) in canonical form, anchored by `anchor`: a group per
    glob, a lone `*` followed by the exclusion that keeps it to files. Brace alternatives that need
    different treatment (`{Makefile,src/*.ts}`) are converted one by one."""
    alternatives = expand_braces(text)
    kinds = {(_slashless(a), _last_is_lone_star(a)) for a in alternatives}
    groups: list[list[str]] = []
    for piece in [text] if len(kinds) == 1 else alternatives:
        glob = anchor(piece)
        if negated:
            groups.append(["!" + glob])
        elif _last_is_lone_star(glob) and not _any_depth_everything(glob):
            groups.append([glob, "!" + files_only_exclusion(glob)])
        else:
            groups.append([glob])
    return groups


def _any_depth_everything(glob: str) -> bool:
    """`*`, `**/*`, `src/**/*`: every file at any depth below (a folder's files are matched by the
    glob itself, so a tool's glob and the canonical one agree)."""
    segments = glob.split("/")
    return segments[-1] in ("*", "**") and (len(segments) == 1 or segments[-2] == "**")


def _slashless(glob: str) -> bool:
    return "/" not in glob.rstrip("/")


def _last_is_lone_star(glob: str) -> bool:
    return glob.rstrip("/").rsplit("/", 1)[-1] == "*"


def files_only_exclusion(glob: str) -> str:
    """What keeps canonical `glob` (ending in a lone `*`) to files, as a tool means it: `src/*`
    matches every folder in `src/` too, so everything in them is excluded (`src/*/**`)."""
    return root_anchored(glob.lstrip("/") + "/**")


def _ordered(groups: Iterable[list[str]]) -> list[str]:
    """The converted globs in an order that keeps their meaning. Canonical globs are read in order
    (gitignore: an exclusion excludes what came before it), so: first the lone-`*` pairs, ordered so
    that no pair's exclusion reaches the files of a pair before it (`*` before `**/src/*`: the root's
    `!*/**` would undo `a/src/b.ts`); then the other globs as written; last every other exclusion,
    which in a tool's list excludes from the whole list wherever it is written (as fast-glob and
    globby read `!` in a list: `["!src/gen/**", "src/**"]` is src/ but src/gen/, never all of src/)."""
    listed = [[canonical(glob) or glob for glob in group] for group in groups if group]  # (a bad glob: as
    # written, for the service to refuse with its reason)
    pairs = [g for g in listed if _is_pair(g)]
    singles = [glob for group in listed if not _is_pair(group) for glob in group]
    includes = [glob for glob in singles if not glob.startswith("!")]
    exclusions = [glob for glob in singles if glob.startswith("!")]
    in_order = [glob for group in _order_pairs(pairs) for glob in group] + includes + exclusions
    return list(reversed(dict.fromkeys(reversed(in_order))))  # a glob written twice: where it last acts


def _is_pair(group: list[str]) -> bool:
    return len(group) == 2 and group[1].startswith("!")


def _order_pairs(pairs: list[list[str]]) -> list[list[str]]:
    """Pairs placed from the last back: last goes one whose exclusion reaches no sample file of the
    others; when none can (folders repeated inside such globs, `src/a/x/src/b.ts` for `src/a/*` and
    `**/src/*`: a documented deviation), the last as written."""
    remaining = list(pairs)
    ordered: list[list[str]] = []
    while remaining:
        last = next((pair for pair in reversed(remaining)
                     if not any(_reaches(pair, other) for other in remaining if other is not pair)), remaining[-1])
        remaining.remove(last)
        ordered.insert(0, last)
    return ordered


def _reaches(pair: list[str], other: list[str]) -> bool:
    return any(glob_matches(pair[1], sample) for sample in _sample_files(other[0]))


def _sample_files(glob: str) -> list[str]:
    """Paths `glob` names as files: each wildcard a letter, each `**` once no folder, once one."""
    samples = []
    for alternative in expand_braces(glob.lstrip("/")):
        segments = [_SAMPLE_WILDCARD.sub("s", s) if s != "**" else s for s in alternative.split("/")]
        samples.append("/".join(s for s in segments if s != "**"))
        samples.append("/".join("s" if s == "**" else s for s in segments))
    return [s for s in samples if s]


# --- generation -----------------------------------------------------------------------------------

def to_root_relative(globs: Sequence[str], files_only: bool = False) -> Converted:
    """Canonical globs as Cursor (`globs`), Claude Code (`paths:`), Windsurf and Cline read them
    (minimatch, root-relative, files only). `files_only`: the globs came from such a tool
    (globs_name_files), so a folder-like name is a file's and gets no `<glob>/**`. Case cannot be
    said: a pattern matching ignoring case (imported from Copilot) is written as spelled."""
    return _converted(globs, files_only, _root_relative_spelling)


def to_copilot(globs: Sequence[str], files_only: bool = False) -> Converted:
    """Canonical globs as Copilot's `applyTo` items. VS Code matches a glob not starting with `/`
    or `**/` at any depth (and one starting with `/` against the file's absolute path: never, in
    practice), so a glob anchored at the root cannot be said: it is written relative, matching at
    any depth too, and listed in `widened`. Case: VS Code ignores it; a pattern imported from
    Copilot did too, another one is widened to other cases of its names (rare in a repository)."""
    return _converted(globs, files_only, _copilot_spelling)


def _root_relative_spelling(glob: str) -> tuple[str, bool]:
    if glob.startswith("/"):  # the root's
        return glob[1:], False
    if "/" in glob or _all_globstars(glob):  # anchored already, or every file
        return glob, False
    return "**/" + glob, False  # any depth


def _copilot_spelling(glob: str) -> tuple[str, bool]:
    if glob in EVERY_FILE or _all_globstars(glob) or glob.startswith("**/"):
        return glob, False
    if glob.startswith("/") or "/" in glob:  # anchored at the root: VS Code reads it at any depth
        return glob.lstrip("/"), True
    return "**/" + glob, False


def _converted(globs: Sequence[str], files_only: bool, spell: Callable[[str], tuple[str, bool]]) -> Converted:
    """Each canonical include spelled by `spell` (the tool's text, and whether it says more than the
    glob means), with `<text>/**` where the tool must be told a folder's files; the exclusions a
    lone `*` needs are said by the tool's own `*`, the others returned for the body to say."""
    written: list[str] = []
    excluded: list[str] = []
    widened: list[str] = []
    pairs = _pair_exclusions(globs)
    for glob in globs:
        if glob.startswith("!"):
            if glob not in pairs:
                excluded.append(glob[1:])
            continue
        text, wider = spell(glob)
        written.append(text)
        if wider:
            widened.append(glob)
        if _needs_folder_contents(glob, pairs, files_only):
            written.append(text + "/**")
    return Converted(list(dict.fromkeys(written)), excluded, widened)


def _all_globstars(glob: str) -> bool:
    return all(segment == "**" for segment in glob.split("/"))


def _pair_exclusions(globs: Sequence[str]) -> set[str]:
    """The exclusions that only keep a lone-`*` glob to files (`src/*`, right after it `!src/*/**`):
    the tools' `src/*` says both at once. One further away also narrows the globs between them
    (written so by `!a/*/**` in a tool's list), so it is said as any other exclusion."""
    return {after for glob, after in itertools.pairwise(globs)
            if not glob.startswith("!") and _last_is_lone_star(glob) and after == f"!{files_only_exclusion(glob)}"}


def _needs_folder_contents(glob: str, pairs: set[str], files_only: bool) -> bool:
    """Does canonical `glob` also mean the files in folders it names, which a tool matching files
    only must be told (`<glob>/**`)? A folder-like last name (no wildcard, no dot: `tests`) or a
    lone `*` without its files-only exclusion; not `**`, which already means everything below."""
    last = glob.rsplit("/", 1)[-1]
    if last == "*":
        return f"!{files_only_exclusion(glob)}" not in pairs and not _any_depth_everything(glob)
    return not (files_only or "." in last or any(c in last for c in "*?[{"))
