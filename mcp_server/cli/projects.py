"""`aletheia-mcp projects list|rename`."""

from __future__ import annotations

import typer

from mcp_server.cli.common import load_settings, out, run, with_app

app = typer.Typer(help="Projects (repositories): what each holds, and renaming one.", no_args_is_help=True)


@app.command("list")
def projects_list() -> None:
    """Print every project with its rows (memories and exchanges: the configured user's)."""
    from rich.table import Table

    rows = with_app(lambda a: a.projects.rows_per_project(), load_embedder=False)
    table = Table("project", "memories", "patterns", "exchanges")
    for row in rows:
        table.add_row(row.key or "(global)", str(row.memories), str(row.patterns), str(row.conversations))
    out.print(table)


@app.command("rename")
def projects_rename(
    old: str = typer.Argument(..., help="The project's key now, e.g. github.com/old-org/repo."),
    new: str = typer.Argument(..., help="Its new key, e.g. the repository's new remote github.com/new-org/repo."),
    merge: bool = typer.Option(False, "--merge", help="When NEW exists already, move OLD's rows into it "
                                                      "(NEW's copy wins where both hold the same); OLD stays, empty."),
) -> None:
    """Give a project a new key (its repository moved to a new remote); its rows follow, every user's."""
    from mcp_server.services.projects import rename_project

    report = run(rename_project(load_settings(), old, new, merge=merge))
    merged = report.merged
    if merged is None:
        out.print(f"Renamed {old} to {new}.", highlight=False)
        return
    out.print(f"Merged {old} into {new}: {merged.memories} memories ({merged.duplicate_memories} already in {new} "
              f"dropped), {merged.patterns} patterns ({merged.clashing_patterns} already in {new} dropped), "
              f"{merged.conversations} exchanges.", highlight=False)
