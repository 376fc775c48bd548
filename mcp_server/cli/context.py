"""`aletheia-mcp context generate`: write AI context files into a repository."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mcp_server.cli.common import err, out, project_option, with_app
from mcp_server.schemas import CONTEXT_FORMATS, MAX_CONTEXT_PATTERNS

app = typer.Typer(help="Write AI context files (AGENTS.md, CLAUDE.md, Cursor, Copilot).", no_args_is_help=True)
FORMATS_IN_WORDS = f"{', '.join(CONTEXT_FORMATS[:-1])} or {CONTEXT_FORMATS[-1]}"


@app.command("generate")
def context_generate(
    fmt: str = typer.Option(..., "--format", "-f", help=f"{FORMATS_IN_WORDS}."),
    root: Path = typer.Option(Path("."), "--root", help="Repository root to write under."),
    path: list[str] = typer.Option([], "--path", help="Only patterns that apply to this file (repeatable)."),
    query: str | None = typer.Option(None, "--query", help="Only patterns relevant to this topic."),
    tag: list[str] = typer.Option([], "--tag", help="Only patterns with this tag (repeatable)."),
    max_patterns: int = typer.Option(50, "--max-patterns", min=1, max=MAX_CONTEXT_PATTERNS),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 (with a diff) if files are stale."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the diff; write nothing."),
    project: str | None = project_option("Project whose patterns (with the global ones) go "
                                         "in; default: ALETHEIA_PROJECT, else the git repository at --root."),
) -> None:
    """Write context files under --root, replacing only the aletheia-marked section of existing files."""
    write = not (check or dry_run)
    changes = with_app(lambda a: a.rule_files.write_context_files(root, fmt, path or None, query, tag or None,
                                                                  max_patterns, project, write=write))
    if not write:
        for change in changes:
            sys.stdout.write(change.diff())
        if check and changes:
            err.print(f"{len(changes)} file(s) differ from the pattern store; run without --check to update.")
            raise typer.Exit(1)
        if not changes:
            out.print("Up to date.")
        return
    for change in changes:
        verb = "removed" if change.after is None else "created" if change.before is None else "updated"
        out.print(f"{verb} {change.path}", highlight=False)
    if not changes:
        out.print("Up to date.")
