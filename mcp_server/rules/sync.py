"""Rule files and context files on disk: find rule files to import, write exported patterns, and
plan / apply the changes that generating context files makes to a repository."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mcp_server.rules import render
from mcp_server.schemas import ContextFiles, Pattern

_SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", "dist",
              "build", ".tox"}


def is_rule_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".mdc", ".md")) or name == ".cursorrules"


def is_generated_file(path: Path) -> bool:
    """A per-pattern file that `context generate` wrote (`.cursor/rules/aletheia-*.mdc`,
    `.github/instructions/aletheia-*.instructions.md`): importing it would copy its pattern."""
    folder = "/".join(path.absolute().parent.parts[-2:])
    return path.name.startswith(render.GENERATED_PREFIX) and folder in (render.CURSOR_RULES_DIR, render.COPILOT_DIR)


def is_only_generated(text: str) -> bool:
    """A shared file (AGENTS.md, CLAUDE.md, copilot-instructions.md) holding nothing but the
    section `context generate` wrote: nothing of a person's to import."""
    return render.BEGIN in text and not render.strip_marked(text).strip()


@dataclass
class Discovered:
    files: list[Path] = field(default_factory=list)  # rule files to read
    generated: list[Path] = field(default_factory=list)  # our own generated files, skipped
    missing: list[Path] = field(default_factory=list)  # paths that do not exist


def discover(paths: Iterable[Path]) -> Discovered:
    """Rule files among `paths` (folders are walked recursively, skipping VCS and build folders),
    without the files we generated; a path that does not exist is listed, not fatal."""
    found = Discovered()
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
                for name in sorted(files):
                    candidate = Path(root) / name
                    if is_rule_file(candidate):
                        (found.generated if is_generated_file(candidate) else found.files).append(candidate)
        elif path.is_file():
            (found.generated if is_generated_file(path) else found.files).append(path)
        else:
            found.missing.append(path)
    return found


def source_path_of(path: Path, root: Path | None) -> str:
    """A rule file's path as its patterns record it: relative to `root` (its repository's root),
    else to the working directory (absolute when outside it), so that re-importing the same files,
    from any clone and any directory, updates the same patterns."""
    resolved = path.resolve()
    try:
        return resolved.relative_to((root or Path.cwd()).resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def write_exports(patterns: Sequence[Pattern], directory: Path) -> list[Path]:
    """Each pattern as `<slug>.md` in `directory` (render.export_markdown)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for pattern in patterns:
        path = directory / f"{render.slug(pattern)}.md"
        path.write_text(render.export_markdown(pattern), encoding="utf-8")
        written.append(path)
    return written


@dataclass(frozen=True)
class FileChange:
    path: str
    before: str | None  # None: the file does not exist yet
    after: str | None  # None: the file is removed (a generated file whose pattern is gone)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(difflib.unified_diff(
            (self.before or "").splitlines(keepends=True), (self.after or "").splitlines(keepends=True),
            fromfile=f"a/{self.path}" if self.before is not None else "/dev/null",
            tofile=f"b/{self.path}" if self.after is not None else "/dev/null",
        ))


def plan_context_files(root: Path, fmt: str, generated: ContextFiles) -> list[FileChange]:
    """What writing `generated` under `root` would change (merging marked sections, removing stale files)."""
    owned_dirs = render.render(fmt, []).owned_dirs  # folders whose aletheia-* files are ours
    changes: list[FileChange] = []
    for item in generated.files:
        target = root / item.path
        before = target.read_text(encoding="utf-8") if target.exists() else None
        marked = item.path in render.MARKED_PATHS
        after = render.merge_marked(before, item.content) if marked else item.content
        changes.append(FileChange(item.path, before, after))
    wanted = {f.path for f in generated.files}
    for folder, suffix in owned_dirs.items():
        directory = root / folder
        if directory.is_dir():
            for stale in sorted(directory.glob(f"{render.GENERATED_PREFIX}*{suffix}")):
                relative = stale.relative_to(root).as_posix()
                if relative not in wanted:
                    changes.append(FileChange(relative, stale.read_text(encoding="utf-8"), None))
    return changes


def apply_changes(root: Path, changes: Sequence[FileChange]) -> None:
    for change in changes:
        target = root / change.path
        if change.after is None:
            target.unlink(missing_ok=True)
        elif change.changed:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(change.after, encoding="utf-8")
