"""Patterns and files: import rule files, export patterns, and write context files to a repository."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mcp_server.schemas import ContextFile, ContextFiles, Pattern
from mcp_server.services import context_files
from mcp_server.services.importers import (
    ImportProblem,
    RuleFileError,
    discover,
    export_markdown,
    parse_rule_file,
    source_path_of,
)
from mcp_server.services.patterns import PatternInput, PatternService
from mcp_server.settings import Settings

IMPORT_BATCH_FILES = 50


@dataclass
class PatternImportReport:
    files: int = 0
    created: int = 0
    updated: int = 0
    problems: list[ImportProblem] = field(default_factory=list)


async def import_rule_files(service: PatternService, paths: Sequence[Path], settings: Settings,
                            progress: Callable[[int], None] | None = None) -> PatternImportReport:
    """Parse every rule file, then upsert them in batches of files (one transaction per batch)."""
    report = PatternImportReport()
    try:
        files = list(discover(paths))
    except RuleFileError as exc:
        report.problems.append(ImportProblem(str(exc).split(":")[0], "no such file or folder"))
        files = []
    batch: list[PatternInput] = []
    batch_files = 0

    async def flush() -> None:
        nonlocal batch, batch_files
        for _, created in await service.upsert_many(batch):
            report.created += created
            report.updated += not created
        if progress:
            progress(batch_files)
        batch, batch_files = [], 0

    for path in files:
        report.files += 1
        batch_files += 1
        try:
            batch += parse_rule_file(path, path.read_text(encoding="utf-8"), settings)
        except (RuleFileError, UnicodeDecodeError, OSError) as exc:
            report.problems.append(ImportProblem(source_path_of(path), str(exc)))
        if batch_files >= IMPORT_BATCH_FILES:
            await flush()
    if batch or batch_files:
        await flush()
    await service.after_bulk_write(report.created + report.updated)
    return report


def export_patterns(patterns: Sequence[Pattern], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for pattern in patterns:
        path = directory / f"{context_files.slug(pattern)}.md"
        path.write_text(export_markdown(pattern), encoding="utf-8")
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
    owned_dirs = context_files.render(fmt, []).owned_dirs  # folders whose aletheia-* files are ours
    changes: list[FileChange] = []
    for item in generated.files:
        target = root / item.path
        before = target.read_text(encoding="utf-8") if target.exists() else None
        marked = item.path in context_files.MARKED_PATHS
        after = context_files.merge_marked(before, item.content) if marked else item.content
        changes.append(FileChange(item.path, before, after))
    wanted = {f.path for f in generated.files}
    for folder, suffix in owned_dirs.items():
        directory = root / folder
        if directory.is_dir():
            for stale in sorted(directory.glob(f"{context_files.GENERATED_PREFIX}*{suffix}")):
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


def as_context_files(fmt: str, patterns: Sequence[Pattern]) -> ContextFiles:
    rendered = context_files.render(fmt, patterns)
    return ContextFiles(files=[ContextFile(path=f.path, content=f.content) for f in rendered.files],
                        pattern_ids=[p.id for p in patterns])


MAX_CONTEXT_PATTERNS = 200


async def generate_context_files(service: PatternService, fmt: str, paths: Sequence[str] | None = None,
                                 query: str | None = None, tags: Sequence[str] | None = None,
                                 max_patterns: int = 50) -> ContextFiles:
    from mcp_server.services import validation as check

    context_files.check_format(fmt)
    count = check.int_range(max_patterns, "max_patterns", 1, MAX_CONTEXT_PATTERNS)
    patterns = await service.select(paths, query, tags, count)
    return as_context_files(fmt, patterns)
