"""`aletheia-mcp context generate`: write AI context files into a repository."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from mcp_server.cli.common import err, out, project_option, with_app
from mcp_server.schemas import CONTEXT_FORMATS, MAX_CONTEXT_PATTERNS, MAX_FILE_CHARS

if TYPE_CHECKING:
    from mcp_server.services.rule_files import GeneratedContext

app = typer.Typer(help="Write AI context files (AGENTS.md, CLAUDE.md, GEMINI.md, Cursor, Copilot, Windsurf, Cline).",
                  no_args_is_help=True)
FORMATS_IN_WORDS = f"{', '.join(CONTEXT_FORMATS[:-1])} or {CONTEXT_FORMATS[-1]}"
LEFT_OUT_SHOWN = 5  # named in the summary; --show-left-out lists them all


@app.command("generate")
def context_generate(
    fmt: str = typer.Option(..., "--format", "-f", help=f"{FORMATS_IN_WORDS}."),
    root: Path = typer.Option(Path("."), "--root", help="Repository root to write under (its top level, not a "
                                                       "sub-folder: the patterns' globs are relative to it)."),
    path: list[str] = typer.Option([], "--path", help="Only patterns that apply to this file (repeatable)."),
    query: str | None = typer.Option(None, "--query", help="Only patterns relevant to this topic."),
    tag: list[str] = typer.Option([], "--tag", help="Only patterns with this tag (repeatable)."),
    max_chars: int | None = typer.Option(
        None, "--max-chars", help=f"Characters a generated file may hold (default: the format's own; at most "
                                  f"{MAX_FILE_CHARS:,}). The most relevant patterns go in; the rest are listed as "
                                  "left out."),
    max_patterns: int | None = typer.Option(
        None, "--max-patterns", min=1, max=MAX_CONTEXT_PATTERNS,
        help="At most this many patterns, the most relevant (default: as many as --max-chars holds)."),
    show_left_out: bool = typer.Option(False, "--show-left-out", help="List every pattern left out."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 (with a diff) if files are stale."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the diff; write nothing."),
    project: str | None = project_option("Project whose patterns (with the global ones) go "
                                         "in; default: ALETHEIA_PROJECT, else the git repository at --root."),
) -> None:
    """Write context files under --root, replacing only the aletheia-marked section of existing files.

    Patterns go in most relevant first: always-apply ones, then those attached on request, then
    those scoped by globs (the project's own before global ones, then those applying to more of the
    files git tracks), until a file's budget (--max-chars) is full."""
    write = not (check or dry_run)
    plan = with_app(lambda a: a.rule_files.plan_context_files(root, fmt, path or None, query, tag or None,
                                                              max_patterns, project, max_chars=max_chars,
                                                              write=write))
    # With --check / --dry-run, stdout is the diff: what was left out goes to stderr then.
    report = out if write else err
    if not write:
        for change in plan.changes:
            sys.stdout.write(change.diff())
        print_selection(report, plan.generated, show_left_out)
        if check and plan.changes:
            err.print(f"{len(plan.changes)} file(s) differ from the pattern store; run without --check to update.")
            raise typer.Exit(1)
        if not plan.changes:
            out.print("Up to date.")
        return
    for change in plan.changes:
        verb = "removed" if change.after is None else "created" if change.before is None else "updated"
        out.print(f"{verb} {change.path}", highlight=False, markup=False)  # (a folder may be `[id]`)
    if not plan.changes:
        out.print("Up to date.")
    print_selection(report, plan.generated, show_left_out)


def print_selection(console: Console, generated: GeneratedContext, show_all: bool) -> None:
    """How the patterns were ranked (when not by the repository's files), and what was left out."""
    for note in generated.notes:
        console.print(note, highlight=False, soft_wrap=True, markup=False)  # (paths, git's words: not markup)
    left_out = generated.files.left_out
    if not left_out:
        return
    included = len(generated.files.pattern_ids)
    console.print(f"{len(left_out)} pattern(s) left out ({included} included):",
                  highlight=False)
    shown = left_out if show_all else left_out[:LEFT_OUT_SHOWN]
    for pattern in shown:
        console.print(f"  #{pattern.id} {pattern.title or '(untitled)'}: {pattern.reason}", highlight=False,
                      soft_wrap=True, markup=False)
    if len(shown) < len(left_out):
        console.print(f"  ... and {len(left_out) - len(shown)} more: run again with --show-left-out to list them; "
                      "raise --max-chars or narrow the selection (--path, --query, --tag) to fit more.",
                      highlight=False, soft_wrap=True)
