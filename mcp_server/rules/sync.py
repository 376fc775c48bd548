"""Rule files and context files on disk: find rule files to import, write exported patterns, and
plan / apply the changes that generating context files makes to a repository."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mcp_server.errors import InvalidInputError
from mcp_server.rules import render
from mcp_server.schemas import ContextFiles, Pattern

_SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", "dist",
              "build", ".tox"}


def is_rule_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".mdc", ".md")) or name == ".cursorrules"


def is_generated_file(path: Path) -> bool:
    """A per-pattern file that `context generate` wrote (`aletheia-*` in one of the folders a format
    owns: `.cursor/rules`, `.github/instructions`, `.claude/rules`, `.windsurf/rules`, `.clinerules`):
    importing it would copy its pattern."""
    if not path.name.startswith(render.GENERATED_PREFIX):
        return False
    parts = path.absolute().parent.parts
    for owned in render.OWNED_DIRS.values():
        for folder, suffix in owned.items():
            wanted = tuple(folder.split("/"))
            if parts[-len(wanted):] == wanted and path.name.endswith(suffix):
                return True
    return False


def is_only_generated(text: str) -> bool:
    """A shared file (AGENTS.md, CLAUDE.md, GEMINI.md, copilot-instructions.md, at the root or in a
    sub-folder) holding nothing but the section `context generate` wrote: nothing of a person's to import."""
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
    """What writing `generated` under `root` would change: marked sections merged into shared files,
    our section removed from the shared files of `fmt` that no longer get one (the file removed
    when nothing of a person's is left), and stale `aletheia-*` files of the folders `fmt` owns removed.

    The repository is not trusted: a path to write or delete that is a symbolic link, or lies in a
    linked folder, is refused (InvalidInputError) before anything is written, since writing through
    it could change a file anywhere. Shared files that are links, and `aletheia-*` files that are
    links, are never touched (we write neither). The sweep for nested AGENTS.md / GEMINI.md files
    stops at other repositories (a folder holding `.git`: a submodule, a worktree, a vendored
    checkout, whose files are theirs) and skips build and dependency folders (_SKIP_DIRS)."""
    if root.exists() and not root.is_dir():
        raise InvalidInputError(f"{root} is a file, not a folder: pass the repository's root folder.")
    changes: list[FileChange] = []
    for item in generated.files:
        _check_writable(root, item.path)
        target = root / item.path
        before = _read(root, item.path) if target.exists() else None
        after = render.merge_marked(before, item.content) if render.is_marked_path(item.path) else item.content
        changes.append(FileChange(item.path, before, after))
    wanted = {f.path for f in generated.files}
    for relative in _marked_files(root, fmt):
        if relative not in wanted and render.BEGIN.encode() in _read_bytes(root, relative):
            before = _read(root, relative)  # (a file without our marker need not be text we can read)
            if render.BEGIN in before and render.END in before:
                changes.append(FileChange(relative, before, _without_section(before)))
    for folder, suffix in render.OWNED_DIRS[fmt].items():
        directory = root / folder
        if directory.is_dir():
            _refuse_links(root, folder, f"{folder}/{render.GENERATED_PREFIX}*{suffix}")  # (stale ones are deleted)
            for stale in sorted(directory.glob(f"{render.GENERATED_PREFIX}*{suffix}")):
                relative = stale.relative_to(root).as_posix()
                if relative not in wanted and not stale.is_symlink():
                    changes.append(FileChange(relative, _read(root, relative), None))
    return changes


def _marked_files(root: Path, fmt: str) -> list[str]:
    """The shared files of `fmt` under `root` that may hold our section: the root one, and for the
    formats written in sub-folders (AGENTS.md, GEMINI.md) every file of that name in this
    repository (not in nested repositories, build or dependency folders; see plan_context_files).
    Links are left out: we never write one."""
    name = render.SHARED_FILE.get(fmt)
    if name is None:
        return []
    if fmt not in render.NESTED_FORMATS:
        return [name] if (root / name).is_file() and _linked_part(root, name) is None else []
    found = []
    for folder, dirs, files in os.walk(root):  # (os.walk does not enter linked folders)
        here = Path(folder)
        if here != root and any(entry.lower() == ".git" for entry in (*dirs, *files)):
            dirs[:] = []  # another repository: its files are its own
            continue
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        if name in files and (here / name).is_file() and not (here / name).is_symlink():
            found.append((here / name).relative_to(root).as_posix())
    return found


def _read_bytes(root: Path, relative: str) -> bytes:
    try:
        return (root / relative).read_bytes()
    except OSError as error:
        raise InvalidInputError(f"Cannot read {relative}: {error.strerror or error}. Make it readable (or move it), "
                                "then generate again.") from None


def _read(root: Path, relative: str) -> str:
    """A file we are about to change, as text; one that is not UTF-8 (or cannot be read) is refused
    with its name, since we could not write it back as it was."""
    data = _read_bytes(root, relative)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInputError(f"Cannot update {relative}: it is not UTF-8 text ({error.reason} at byte "
                                f"{error.start}). Save it as UTF-8, then generate again.") from None


def _without_section(text: str) -> str | None:
    """`text` without our marked section and the line breaks around it that render.merge_marked
    added, so a person's file comes back byte for byte; None when the file was ours alone (it
    started with our section and nothing follows it), so the file goes."""
    start = text.find(render.BEGIN)
    end = text.find(render.END, start + len(render.BEGIN))
    if start == -1 or end == -1:
        return text
    before, after = text[:start], text[end + len(render.END):]
    after = after.removeprefix("\n")
    if not before and not after.strip():
        return None
    if not after.strip() and before.endswith("\n"):  # appended after the one line break merge_marked adds
        return before[:-1]
    return before + after


def _linked_part(root: Path, relative: str) -> Path | None:
    """The first of `relative`'s folders, or the file itself, that is a symbolic link (None if none is)."""
    path = root
    for part in relative.split("/"):
        path = path / part
        if path.is_symlink():
            return path
    return None


def _refuse_links(root: Path, relative: str, written: str) -> None:
    linked = _linked_part(root, relative)
    if linked is not None:
        raise InvalidInputError(
            f"Cannot write {written}: {linked} is a symbolic link (to {os.readlink(linked)}), and generated files "
            "are never written or deleted through links, which could change files outside the repository. Replace "
            "the link with a real file or folder (or remove it), then generate again; if it makes one file serve "
            "two tools (CLAUDE.md -> AGENTS.md), generate only the format of the file it points to.")


def _check_writable(root: Path, relative: str) -> None:
    """Refuse, before anything is written, a file that is (or lies in a folder that is) a symbolic link,
    or whose folder is a file here (a legacy `.clinerules` file where Cline's rules folder goes):
    writing would change a file elsewhere, or fail half-way."""
    if ".." in relative.split("/") or relative.startswith("/"):
        raise InvalidInputError(f"Cannot write {relative}: it is not a path inside the repository.")
    _refuse_links(root, relative, relative)
    folder = root
    for part in relative.split("/")[:-1]:
        folder = folder / part
        if folder.exists() and not folder.is_dir():
            raise InvalidInputError(f"Cannot write {relative}: {folder} is a file, not a folder. Move its text into a "
                                    f"file inside a folder of that name (e.g. {folder}/rules.md), then generate again.")


def apply_changes(root: Path, changes: Sequence[FileChange]) -> None:
    for change in changes:  # (checked again: a link may have appeared since the plan)
        _check_writable(root, change.path)
    for change in changes:
        target = root / change.path
        if change.after is None:
            target.unlink(missing_ok=True)
        elif change.changed:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(change.after, encoding="utf-8")
