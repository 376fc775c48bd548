"""Patterns and files: import a team's rule files, export patterns as markdown, and generate the
context files AI tools read (AGENTS.md, CLAUDE.md, Cursor rules, Copilot instructions).

What a rule file means and how a context file is written live in rules/; this service reads and
validates the files, stores their patterns in batches (one transaction per batch of files), and
picks the patterns a context file should hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread

from mcp_server.db import patterns as pattern_rows
from mcp_server.errors import InvalidInputError, NotFoundError, RuleFileError
from mcp_server.repository import Repository, check_project_name, find_repository
from mcp_server.rules import budget, render, sync
from mcp_server.rules.parse import SECTIONED_NAMES, RuleDraft, parse_rule_file, split_front_matter
from mcp_server.schemas import MAX_CONTEXT_PATTERNS, ContextFiles, LeftOutPattern, Pattern
from mcp_server.services import paging
from mcp_server.services import validation as check
from mcp_server.services.patterns import PatternInput, PatternService
from mcp_server.services.progress import ProgressStart
from mcp_server.services.projects import ProjectService
from mcp_server.services.repository_files import count_applying, relevance_order, tracked_files
from mcp_server.settings import Settings

IMPORT_BATCH_FILES = 50
MAX_RULE_FILE_BYTES = 1_000_000  # real rule files reach ~60 KB; AGENTS.md-style files hold many of them
# Patterns ranked for one generation (a project's and the global ones): the 448 files of issue 19
# made ~450; ranking 10,000 costs well under a second (bench/context_relevance.py).
MAX_CONTEXT_CANDIDATES = 10_000


@dataclass(frozen=True)
class ImportProblem:
    path: str
    reason: str


@dataclass(frozen=True)
class PrunedPattern:
    id: int
    title: str | None
    source_path: str


@dataclass
class PatternImportReport:
    files: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[ImportProblem] = field(default_factory=list)  # files (or paths) not imported
    warnings: list[ImportProblem] = field(default_factory=list)  # files imported, not quite as they say
    generated: list[str] = field(default_factory=list)  # files `context generate` wrote: skipped
    pruned: list[PrunedPattern] = field(default_factory=list)  # (--prune) no longer in their file

    def count(self, status: pattern_rows.Upsert) -> None:
        setattr(self, status, getattr(self, status) + 1)


@dataclass(frozen=True)
class RuleFileContent:
    patterns: list[PatternInput]
    warning: str | None = None  # what was imported differently from what the file says
    # An exported pattern made without a file (add_pattern): its id where it was exported from.
    exported_id: int | None = None
    # The patterns' source_path is this file's own (not an exported pattern's): --prune applies.
    own_source: bool = True


@dataclass(frozen=True)
class _Exported:
    """What `patterns export` wrote (render.export_markdown): the pattern's fields as stored, and
    its identity (its id, and the rule file it was imported from; null: made with add_pattern)."""

    pattern_id: int
    source_path: str | None
    title: str | None
    content: str
    metadata: dict[str, Any]


def _exported(file_name: str, text: str) -> _Exported | None:
    """The export of one pattern (markdown whose front matter has `pattern_id`), else None."""
    name = file_name.lower()
    if not name.endswith(".md") or name.endswith(".instructions.md") or name in SECTIONED_NAMES:
        return None
    try:
        front, body = split_front_matter(text.replace("\r\n", "\n"), lenient=False)
    except RuleFileError:  # not YAML, which an export always is (a tool's rule: parse_rule_file read it)
        return None
    if "pattern_id" not in front:
        return None
    pattern_id, source = front["pattern_id"], front.get("source_path")
    if isinstance(pattern_id, bool) or not isinstance(pattern_id, int) or pattern_id < 1:
        raise RuleFileError("`pattern_id` in the front matter must be the id `patterns export` wrote (a positive "
                            "integer); remove it to import the file as a new pattern")
    if source is not None and not (isinstance(source, str) and source.strip()):
        raise RuleFileError("`source_path` in the front matter must be the path `patterns export` wrote, or null")
    title = front.get("title")
    metadata = front.get("metadata")
    return _Exported(pattern_id, source, None if title is None else str(title), body.strip(),
                     dict(metadata) if isinstance(metadata, dict) else {})


def read_rule_file(path: Path, text: str, settings: Settings, named: str | None = None,
                   repository: Repository | None = None) -> RuleFileContent:
    """The validated patterns of one rule file, with their source path relative to the root of
    `repository` (None: the working directory), for the first project that applies: `named`
    (--project, ALETHEIA_PROJECT), else the file's front matter `project` (what `patterns export`
    writes; null: global) when the file is outside any repository or names its own, else
    `repository`'s (None: global). A file in one repository cannot put patterns into another
    project or make them global (a hostile repository could otherwise reach every project): such a
    `project` is ignored, with a warning. RuleFileError says why the file cannot be imported.

    A file `patterns export` wrote keeps the pattern's own identity, so that importing an export
    changes nothing: its `source_path` (the rule file the pattern came from), and for a pattern
    made without one, its `pattern_id` (see RuleFileService._update_exported); its title,
    content and metadata are taken exactly as written (no title from a heading, no format added)."""
    own_path = sync.source_path_of(path, repository.root if repository else None)
    drafts = parse_rule_file(path.name, own_path, text)
    exported = _exported(path.name, text)
    try:
        project, warning = _project_of(drafts[0], named, repository)
        items = []
        for d in drafts:
            title: str | None = d.title
            content, metadata, source = d.content, d.metadata, d.source_path
            if exported is not None:
                title, content, metadata = exported.title, exported.content, exported.metadata
                source = exported.source_path or own_path
            items.append(PatternInput.build(settings, content=content, title=title, tags=d.tags,
                                            strategy_type=d.strategy_type, target_contexts=d.target_contexts,
                                            author=d.author, metadata=metadata, source_path=source,
                                            project=project))
    except InvalidInputError as exc:
        raise RuleFileError(str(exc)) from None
    if exported is None:
        return RuleFileContent(items, warning)
    return RuleFileContent(items, warning, exported_id=exported.pattern_id if exported.source_path is None else None,
                           own_source=exported.source_path is None)


def _project_of(draft: RuleDraft, named: str | None, repository: Repository | None) -> tuple[str | None, str | None]:
    """The project of a file's patterns, and a warning when its front matter's is ignored."""
    if named is not None:
        return named, None
    if not draft.names_project:
        return (repository.key if repository else None), None
    stated = None if draft.project is None else check_project_name(draft.project, "project (front matter)")
    if repository is None or stated == repository.key:
        return stated, None
    return repository.key, (f"its front matter names {'no project (global)' if stated is None else stated}, but a "
                            f"file in the repository of {repository.key} imports into it; to import it elsewhere, "
                            "pass --project or import it from outside any repository")


class RuleFileService:
    def __init__(self, patterns: PatternService, settings: Settings, projects: ProjectService) -> None:
        self.patterns = patterns
        self.settings = settings
        self.projects = projects

    async def import_files(self, paths: Sequence[Path], progress_total: ProgressStart | None = None,
                           project: str | None = None, *, prune: bool = False) -> PatternImportReport:
        """Import the rule files among `paths` (folders searched recursively), each into the project
        of its own repository unless a project is named (`project`, ALETHEIA_PROJECT) or the file
        names its own (see read_rule_file). Identity is (project, file path relative to the
        repository's root, title): re-importing updates what changed and leaves the rest alone.
        Files `context generate` wrote are skipped; a path that does not exist is a problem, and the
        others are still imported. With `prune`, the patterns of each file imported now that are no
        longer in it (a section renamed or removed) are deleted.
        `progress_total(files)` returns the callback told how many files each batch finished."""
        self.patterns.require_maintainer()  # before reading any file
        named = self.projects.explicit(project)
        report = PatternImportReport()
        found = sync.discover(paths)
        report.problems += [ImportProblem(str(p), "no such file or folder") for p in found.missing]
        report.generated += [sync.source_path_of(p, None) for p in found.generated]
        progress = progress_total(len(found.files)) if progress_total else None
        batch: list[PatternInput] = []
        prunable: list[bool] = []  # per item of `batch`: its source_path is the file it was read from
        sole: list[bool] = []  # per item of `batch`: the only pattern of its file
        batch_files = 0
        kept: dict[tuple[str | None, str], list[int]] = {}  # (project, source_path) -> the ids it holds now

        async def flush() -> None:
            nonlocal batch, prunable, sole, batch_files
            results = await self.patterns.upsert_many(batch, sole) if batch else []
            for item, own, (pattern_id, status) in zip(batch, prunable, results, strict=True):
                report.count(status)
                if own and item.source_path is not None:
                    kept.setdefault((item.project, item.source_path), []).append(pattern_id)
            if progress:
                progress(batch_files)
            batch, prunable, sole, batch_files = [], [], [], 0

        for path in found.files:
            batch_files += 1
            content = self._read(path, named.key if named else None, report)
            status = None
            if content is not None and content.exported_id is not None:
                status = await self._update_exported(content.exported_id, content.patterns[0])
            if status is not None:
                report.count(status)
            elif content is not None:
                batch += content.patterns
                prunable += [content.own_source] * len(content.patterns)
                sole += [content.own_source and len(content.patterns) == 1] * len(content.patterns)
            if batch_files >= IMPORT_BATCH_FILES:
                await flush()
        if batch or batch_files:
            await flush()
        if prune:
            report.pruned = await self._prune(kept)
        await self.patterns.after_bulk_write(report.created + report.updated + len(report.pruned))
        return report

    def _read(self, path: Path, named: str | None, report: PatternImportReport) -> RuleFileContent | None:
        """The patterns of one file; None when there are none to store (a problem, or a file we
        generated), which `report` then records."""
        where = sync.source_path_of(path, None)
        try:
            size = path.stat().st_size
            if size > MAX_RULE_FILE_BYTES:  # before reading it: a repository's files are untrusted
                report.files += 1
                report.problems.append(ImportProblem(where, f"the file has {size:,} bytes; a rule file may have at "
                                                            f"most {MAX_RULE_FILE_BYTES:,}: split it into several"))
                return None
            text = path.read_text(encoding="utf-8")
            if sync.is_only_generated(text):
                report.generated.append(where)
                return None
            report.files += 1
            content = read_rule_file(path, text, self.settings, named, find_repository(path.parent))
        except (RuleFileError, UnicodeDecodeError, OSError) as exc:
            report.files += isinstance(exc, UnicodeDecodeError | OSError)  # (not counted yet: unread)
            report.problems.append(ImportProblem(where, str(exc)))
            return None
        if content.warning:
            report.warnings.append(ImportProblem(where, content.warning))
        return content

    async def _update_exported(self, pattern_id: int, item: PatternInput) -> pattern_rows.Upsert | None:
        """An exported pattern made without a rule file, imported back: when `pattern_id` is that
        pattern here (same project, still without a file, same title), it is updated in place
        (or left alone when nothing changed). None: it is not (another database, a title edited):
        the export file is then imported as a file of its own."""
        try:
            current = await self.patterns.get(pattern_id)
        except NotFoundError:
            return None
        if (current.project, current.source_path, current.title) != (item.project, None, item.title):
            return None
        fields: dict[str, Any] = {"content": item.content, "tags": list(item.tags),
                                  "strategy_type": item.strategy_type, "target_contexts": list(item.target_contexts),
                                  "author": item.author, "metadata": item.meta}
        if all(getattr(current, name) == value for name, value in fields.items()):
            return "unchanged"
        await self.patterns.update(pattern_id, **fields)
        return "updated"

    async def _prune(self, kept: dict[tuple[str | None, str], list[int]]) -> list[PrunedPattern]:
        """Delete the patterns of each imported file that the file no longer holds (one transaction)."""
        pruned = []
        async with self.patterns.database.connection() as conn, conn.transaction():
            for (project, source_path), ids in sorted(kept.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
                project_id = await self.projects.id_to_write(project, conn)
                await pattern_rows.note_change(conn, f"pruned: no longer in {source_path}")
                for pattern_id, title in await pattern_rows.prune_source(conn, project_id, source_path, ids):
                    pruned.append(PrunedPattern(pattern_id, title, source_path))
        return pruned

    async def export_files(self, directory: Path, project: str | None = None) -> list[Path]:
        """Every pattern (only a project's and the global ones when `project` is named) as markdown
        with front matter in `directory` (imports back to the same patterns)."""
        patterns = await self.patterns.all(scope="all" if project is None else "project", project=project)
        return sync.write_exports(patterns, directory)

    async def generate(self, fmt: str, paths: Sequence[str] | None = None, query: str | None = None,
                       tags: Sequence[str] | None = None, max_patterns: int | None = None,
                       project: str | None = None, *, max_chars: int | None = None) -> ContextFiles:
        """The context files of `fmt` for the current project's and the global patterns that apply to
        `paths` / match `query` and `tags`: every file whole (paging them is the caller's business),
        each within `max_chars` (default: the format's), with what did not fit in `left_out`. The
        patterns are ranked by the files of the current project's repository (see `context`)."""
        current = self.projects.current(project)
        return (await self.context(fmt, paths, query, tags, max_patterns, project, max_chars=max_chars,
                                   root=current.root if current else None)).files

    async def generate_page(self, fmt: str, paths: Sequence[str] | None = None, query: str | None = None,
                            tags: Sequence[str] | None = None, max_patterns: int | None = None,
                            project: str | None = None, cursor: str | None = None, *,
                            max_chars: int | None = None, session: str | None = None) -> ContextFiles:
        """The page of `generate`'s files that `cursor` points to (the first without one), within
        MAX_RESPONSE_CHARS (services/paging.py: whole files; one too large for a response is
        described instead). With a `session` (a model asking), the patterns of the page's files are
        recorded as that session's provenance. The files are generated again for every page (no state
        is kept between calls); the cursor refuses a page when they changed meanwhile."""
        current = self.projects.current(project)
        arguments = paging.call_arguments(cursor, "generate_context_file", {  # before generating
            "format": fmt, "paths": paths, "query": query, "tags": tags, "max_patterns": max_patterns,
            "max_chars": max_chars, "project": current.key if current else None})
        complete = await self.generate(fmt, paths, query, tags, max_patterns, project, max_chars=max_chars)
        regenerate = (f"Run `aletheia-mcp context generate --format {fmt}` in the repository to write it (it keeps "
                      "what a person wrote around the marked section), or read its patterns with get_pattern.")
        page = paging.context_files_page(complete, cursor, arguments, self.settings.max_response_chars, regenerate)
        if session is not None:
            self.patterns.record_shown(session, page.pattern_ids)  # only what this page shows
        return page

    async def context(self, fmt: str, paths: Sequence[str] | None = None, query: str | None = None,
                      tags: Sequence[str] | None = None, max_patterns: int | None = None,
                      project: str | None = None, *, max_chars: int | None = None,
                      root: Path | None = None) -> GeneratedContext:
        """The candidate patterns (PatternService.select: those of `project` and the global ones that
        apply to `paths` / match `query` and `tags`; all of them without `paths` and `query`), most
        relevant first (services/repository_files.py: attach mode, the project's own, then how many
        files git tracks under the repository root `root` each applies to), at most `max_patterns`
        of them, rendered as the files of `fmt` within the budget of `max_chars` characters a file."""
        render.check_format(fmt)
        cap = None if max_patterns is None else check.int_range(max_patterns, "max_patterns", 1, MAX_CONTEXT_PATTERNS)
        budget.check_max_chars(fmt, max_chars)  # before any work
        candidates = await self.patterns.select(paths, query, tags, MAX_CONTEXT_CANDIDATES, project)
        ranking = await anyio.to_thread.run_sync(_ranking, candidates, root)  # (git, and CPU: off the event loop)
        ordered = relevance_order(candidates, ranking.counts)
        kept, beyond = (ordered, []) if cap is None else (ordered[:cap], ordered[cap:])
        fitted = budget.within_budget(fmt, kept, max_chars, ranking.folders)
        left_out = [LeftOutPattern(id=p.id, title=p.title, reason=reason) for p, reason in fitted.left_out]
        left_out += [LeftOutPattern(id=p.id, title=p.title, reason=f"beyond max_patterns ({cap}): less relevant "
                                                                     f"than the {cap} taken")
                     for p in beyond]
        notes = [ranking.note] if ranking.note else []
        if len(candidates) >= MAX_CONTEXT_CANDIDATES:
            notes.append(f"Only {MAX_CONTEXT_CANDIDATES:,} patterns were considered: narrow the selection with "
                         "paths, a query or tags.")
        # Each file says which patterns it holds: a page of files records only those as provenance.
        files = [file.model_copy(update={"pattern_ids": fitted.rendered.members.get(file.path, [])})
                 for file in fitted.rendered.files]
        result = ContextFiles(files=files, pattern_ids=[p.id for p in fitted.included], left_out=left_out)
        return GeneratedContext(result, ranking.files, notes)

    async def plan_context_files(self, root: Path, fmt: str, paths: Sequence[str] | None = None,
                                 query: str | None = None, tags: Sequence[str] | None = None,
                                 max_patterns: int | None = None, project: str | None = None, *,
                                 max_chars: int | None = None, write: bool = True) -> ContextPlan:
        """The changes generating `fmt` makes under `root` (only the aletheia-marked section of shared
        files; stale generated files removed), applied unless `write` is False, with what was left
        out. The patterns are the named project's, else those of the repository at `root` (else the
        current project), and the global ones; they are ranked by the files that repository tracks."""
        shown_root, repository = _repository_at(root)
        named = self.projects.explicit(project)
        key = named.key if named else repository.key if repository else None
        generated = await self.context(fmt, paths, query, tags, max_patterns, key, max_chars=max_chars,
                                       root=repository.root if repository else None)
        if repository is None:
            generated.notes.insert(0, f"{shown_root} is not in a git repository, so the patterns were not ranked "
                                      "by the files they apply to.")
        changes = [c for c in sync.plan_context_files(root, fmt, generated.files) if c.changed]
        if write:
            sync.apply_changes(root, changes)
        return ContextPlan(changes, generated)


@dataclass
class GeneratedContext:
    files: ContextFiles  # complete: every file, `pattern_ids` the patterns in them, `left_out` the rest
    files_counted: int  # the tracked files the patterns were ranked by (0: none, `notes` says why)
    notes: list[str] = field(default_factory=list)  # how the ranking was made, when not as usual


@dataclass(frozen=True)
class ContextPlan:
    changes: list[sync.FileChange]
    generated: GeneratedContext


def _repository_at(root: Path) -> tuple[Path, Repository | None]:
    """`root` made absolute (to name it in messages) and the repository whose top level it is (None:
    outside any). A folder inside a repository is refused: the patterns' globs, the ranking and the
    folders are the repository's, so from a sub-folder files would land under the wrong folders and
    the stale ones be swept from only part of the tree."""
    repository = find_repository(root)
    if repository is not None and root.resolve() != repository.root:
        raise InvalidInputError(f"{root.absolute()} is inside the git repository at {repository.root}: context "
                                "files are generated for a whole repository, since the patterns' globs are "
                                f"relative to its root. Pass --root {repository.root} (or run from there).")
    return root.absolute(), repository


@dataclass(frozen=True)
class _Ranking:
    counts: dict[int, int]
    files: int
    note: str | None
    folders: frozenset[str] | None = None  # the folders of the tracked files (None: not known)


def _ranking(patterns: list[Pattern], root: Path | None) -> _Ranking:
    """How many of the files git tracks under `root` each pattern applies to (none without a root)."""
    if root is None:
        return _Ranking({}, 0, None)
    tracked = tracked_files(root)
    counted = count_applying(patterns, tracked.paths)
    notes = [n for n in (tracked.note, counted.note) if n]
    return _Ranking(counted.counts, len(tracked.paths), " ".join(notes) or None,
                    _folders(tracked.paths) if tracked.paths else None)


def _folders(paths: Sequence[str]) -> frozenset[str]:
    """Every folder holding one of `paths` (`a/b/c.py`: `a/b` and `a`), each walked up once."""
    seen: set[str] = set()
    for path in paths:
        folder = path.rpartition("/")[0]
        while folder and folder not in seen:
            seen.add(folder)
            folder = folder.rpartition("/")[0]
    return frozenset(seen)
