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

from mcp_server.errors import InvalidInputError, RuleFileError
from mcp_server.repository import Repository, check_project_name, find_repository
from mcp_server.rules import render, sync
from mcp_server.rules.parse import RuleDraft, parse_rule_file
from mcp_server.schemas import MAX_CONTEXT_PATTERNS, ContextFiles
from mcp_server.services import validation as check
from mcp_server.services.patterns import PatternInput, PatternService
from mcp_server.services.progress import ProgressStart
from mcp_server.services.projects import ProjectService
from mcp_server.services.provenance import ProvenanceTracker
from mcp_server.services.response_fit import fit
from mcp_server.settings import Settings

IMPORT_BATCH_FILES = 50


@dataclass(frozen=True)
class ImportProblem:
    path: str
    reason: str


@dataclass
class PatternImportReport:
    files: int = 0
    created: int = 0
    updated: int = 0
    problems: list[ImportProblem] = field(default_factory=list)  # files not imported
    warnings: list[ImportProblem] = field(default_factory=list)  # files imported, not quite as they say


@dataclass(frozen=True)
class RuleFileContent:
    patterns: list[PatternInput]
    warning: str | None = None  # what was imported differently from what the file says


def read_rule_file(path: Path, text: str, settings: Settings, named: str | None = None,
                   repository: Repository | None = None) -> RuleFileContent:
    """The validated patterns of one rule file, with their source path relative to the root of
    `repository` (None: the working directory), for the first project that applies: `named`
    (--project, ALETHEIA_PROJECT), else the file's front matter `project` (what `patterns export`
    writes; null: global) when the file is outside any repository or names its own, else
    `repository`'s (None: global). A file in one repository cannot put patterns into another
    project or make them global (a hostile repository could otherwise reach every project): such a
    `project` is ignored, with a warning. RuleFileError says why the file cannot be imported."""
    drafts = parse_rule_file(path.name, sync.source_path_of(path, repository.root if repository else None), text)
    try:
        project, warning = _project_of(drafts[0], named, repository)
        return RuleFileContent([PatternInput.build(settings, content=d.content, title=d.title, tags=d.tags,
                                                   strategy_type=d.strategy_type, target_contexts=d.target_contexts,
                                                   author=d.author, metadata=d.metadata, source_path=d.source_path,
                                                   project=project)
                                for d in drafts], warning)
    except InvalidInputError as exc:
        raise RuleFileError(str(exc)) from None


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
    def __init__(self, patterns: PatternService, settings: Settings, provenance: ProvenanceTracker,
                 projects: ProjectService) -> None:
        self.patterns = patterns
        self.settings = settings
        self.provenance = provenance
        self.projects = projects

    async def import_files(self, paths: Sequence[Path], progress_total: ProgressStart | None = None,
                           project: str | None = None) -> PatternImportReport:
        """Import the rule files among `paths` (folders searched recursively), each into the project
        of its own repository unless a project is named (`project`, ALETHEIA_PROJECT) or the file
        names its own (see read_rule_file). Identity is
        (project, file path relative to the repository's root, title): re-importing updates.
        `progress_total(files)` returns the callback told how many files each batch finished."""
        self.patterns.require_maintainer()  # before reading any file
        named = self.projects.explicit(project)
        report = PatternImportReport()
        try:
            files = list(sync.discover(paths))
        except RuleFileError as exc:
            report.problems.append(ImportProblem(str(exc).split(":")[0], "no such file or folder"))
            files = []
        progress = progress_total(len(files)) if progress_total else None
        batch: list[PatternInput] = []
        batch_files = 0

        async def flush() -> None:
            nonlocal batch, batch_files
            for _, created in await self.patterns.upsert_many(batch):
                report.created += created
                report.updated += not created
            if progress:
                progress(batch_files)
            batch, batch_files = [], 0

        for path in files:
            report.files += 1
            batch_files += 1
            try:
                content = read_rule_file(path, path.read_text(encoding="utf-8"), self.settings,
                                         named.key if named else None, find_repository(path.parent))
                batch += content.patterns
                if content.warning:
                    report.warnings.append(ImportProblem(sync.source_path_of(path, None), content.warning))
            except (RuleFileError, UnicodeDecodeError, OSError) as exc:
                report.problems.append(ImportProblem(sync.source_path_of(path, None), str(exc)))
            if batch_files >= IMPORT_BATCH_FILES:
                await flush()
        if batch or batch_files:
            await flush()
        await self.patterns.after_bulk_write(report.created + report.updated)
        return report

    async def export_files(self, directory: Path, project: str | None = None) -> list[Path]:
        """Every pattern (only a project's and the global ones when `project` is named) as markdown
        with front matter in `directory` (imports back to the same patterns)."""
        patterns = await self.patterns.all(scope="all" if project is None else "project", project=project)
        return sync.write_exports(patterns, directory)

    async def generate(self, fmt: str, paths: Sequence[str] | None = None, query: str | None = None,
                       tags: Sequence[str] | None = None, max_patterns: int = 50, project: str | None = None, *,
                       session: str | None = None) -> ContextFiles:
        """The context files of `fmt` for the current project's and the global patterns that apply to
        `paths` / match `query` and `tags`. With a `session` (a model asking), the patterns are
        recorded as that session's provenance."""
        render.check_format(fmt)
        count = check.int_range(max_patterns, "max_patterns", 1, MAX_CONTEXT_PATTERNS)
        result = render.context_files(fmt, await self.patterns.select(paths, query, tags, count, project))
        if session is not None:
            result = fit(result, self.settings.max_response_chars)  # what the model will see
            self.provenance.record(session, pattern_ids=result.pattern_ids)
        return result

    async def write_context_files(self, root: Path, fmt: str, paths: Sequence[str] | None = None,
                                  query: str | None = None, tags: Sequence[str] | None = None,
                                  max_patterns: int = 50, project: str | None = None, *,
                                  write: bool = True) -> list[sync.FileChange]:
        """The changes generating `fmt` makes under `root` (only the aletheia-marked section of shared
        files; stale generated files removed), applied unless `write` is False. The patterns are
        the named project's, else those of the repository at `root` (else the current project),
        and the global ones."""
        named = self.projects.explicit(project)
        repository = find_repository(root) if named is None else None
        key = named.key if named else repository.key if repository else None
        generated = await self.generate(fmt, paths, query, tags, max_patterns, key)
        changes = [c for c in sync.plan_context_files(root, fmt, generated) if c.changed]
        if write:
            sync.apply_changes(root, changes)
        return changes
