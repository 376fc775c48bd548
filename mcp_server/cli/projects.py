"""`aletheia-mcp projects list|rename`."""

from __future__ import annotations

import typer

from mcp_server.cli.common import out, with_app

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
) -> None:
    """Give a project a new key (its repository moved to a new remote); its rows follow."""
    with_app(lambda a: a.projects.rename(old, new), load_embedder=False)
    out.print(f"Renamed {old} to {new}.", highlight=False)
