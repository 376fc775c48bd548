"""`aletheia-mcp patterns import|export|list|delete|history|restore`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mcp_server.cli.common import err, out, progress, project_option, with_app
from mcp_server.schemas import MAX_PATTERN_LISTING, Pattern

if TYPE_CHECKING:
    from mcp_server.app_context import AppContext

app = typer.Typer(help="Import, export and list engineering patterns; see and undo their changes.",
                  no_args_is_help=True)


@app.command("import")
def patterns_import(
    paths: list[Path] = typer.Argument(..., help="Rule files or folders (searched recursively)."),
    project: str | None = project_option("Project (e.g. github.com/org/repo) for every "
                                         "file; default: ALETHEIA_PROJECT, else each file's git repository."),
    prune: bool = typer.Option(False, "--prune", help="Delete the patterns of each file imported now that are no "
                                                      "longer in it (a section renamed or removed)."),
) -> None:
    """Import Cursor (.mdc, .cursorrules), Copilot (*.instructions.md), AGENTS.md, CLAUDE.md and markdown rules.

    Each file's patterns belong to its git repository's project. Identity is (project, file path
    relative to the repository's root, title): re-importing updates what changed. Files that
    `context generate` wrote are skipped; a file `patterns export` wrote imports back to its own
    pattern. Exit status 2 when a file or path could not be imported (the others are)."""
    with progress("importing rule files") as start:
        report = with_app(lambda a: a.rule_files.import_files(paths, start, project, prune=prune), project=project)
    skipped = f" {len(report.generated)} generated file(s) skipped." if report.generated else ""
    out.print(f"{report.files} file(s): {report.created} pattern(s) created, {report.updated} updated, "
              f"{report.unchanged} unchanged, {len(report.problems)} file(s) with problems.{skipped}", highlight=False,
              soft_wrap=True)  # one line, whatever the terminal's width: scripts read it
    for pruned in report.pruned:
        out.print(f"  pruned pattern {pruned.id} ({pruned.title or 'untitled'}): no longer in {pruned.source_path}",
                  highlight=False, soft_wrap=True)
    for problem in report.problems:
        err.print(f"  {problem.path}: {problem.reason}", highlight=False, soft_wrap=True)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning.path}: {warning.reason}", highlight=False, soft_wrap=True)
    if report.problems:
        raise typer.Exit(2)


@app.command("export")
def patterns_export(
    directory: Path = typer.Argument(..., help="Folder to write markdown files into."),
    project: str | None = project_option("Only this project's and the global patterns "
                                         "(default: every pattern)."),
) -> None:
    """Write every pattern as markdown with front matter (imports back to the same patterns)."""
    written = with_app(lambda a: a.rule_files.export_files(directory, project))
    out.print(f"Exported {len(written)} pattern(s) to {directory}.", highlight=False)


@app.command("list")
def patterns_list(
    tag: list[str] = typer.Option([], "--tag", help="Only patterns with this tag (repeatable)."),
    strategy_type: str | None = typer.Option(None, "--strategy-type"),
    limit: int = typer.Option(200, min=1, max=MAX_PATTERN_LISTING),
    project: str | None = project_option("Only this project's and the global patterns "
                                         "(default: every pattern)."),
) -> None:
    """Print the patterns as a table."""
    from rich.table import Table

    patterns = with_app(lambda a: a.patterns.all(tags=tag or None, strategy_type=strategy_type, limit=limit,
                                                 scope="all" if project is None else "project", project=project))
    table = Table("id", "title", "strategy", "tags", "applies to", "project", "source")
    for p in patterns:
        table.add_row(str(p.id), p.title or "", p.strategy_type or "", ", ".join(p.tags),
                      ", ".join(p.target_contexts) or "(everywhere)", p.project or "(global)", p.source_path or "")
    out.print(table)


@app.command("delete")
def patterns_delete(pattern_id: int = typer.Argument(..., metavar="ID", help="The pattern's id.")) -> None:
    """Delete a pattern (its history is kept: `patterns restore ID --version N` brings it back)."""

    async def delete(app: AppContext) -> Pattern:
        pattern = await app.patterns.get(pattern_id)
        await app.patterns.delete(pattern_id)
        return pattern

    deleted = with_app(delete, load_embedder=False)
    out.print(f"Deleted pattern {deleted.id}: {deleted.title or '(untitled)'}. `aletheia-mcp patterns history "
              f"{deleted.id}` lists its versions; `patterns restore {deleted.id} --version N` brings it back.",
              highlight=False, soft_wrap=True)


@app.command("history")
def patterns_history(pattern_id: int = typer.Argument(..., metavar="ID", help="The pattern's id.")) -> None:
    """Every change of a pattern: version, what happened, who did it, when (a deleted pattern keeps it)."""
    from rich.table import Table

    versions = with_app(lambda a: a.patterns.history(pattern_id), load_embedder=False)
    table = Table("version", "action", "by", "at", "title", "note")
    for v in versions:
        table.add_row(str(v.version), v.action, v.changed_by, v.changed_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
                      str(v.snapshot.get("title") or ""), v.note or "")
    out.print(table)


@app.command("restore")
def patterns_restore(
    pattern_id: int = typer.Argument(..., metavar="ID", help="The pattern's id."),
    version: int = typer.Option(..., "--version", help="The version to go back to (`patterns history ID`)."),
) -> None:
    """Put a pattern back as it was at a version (recorded as a new version); brings back a deleted one."""
    restored = with_app(lambda a: a.patterns.restore(pattern_id, version))
    out.print(f"Pattern {restored.id} restored to version {version}: {restored.title or '(untitled)'}.",
              highlight=False)
