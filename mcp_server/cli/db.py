"""`aletheia-mcp db ...`: the schema (Alembic) commands."""

from __future__ import annotations

import sys

import typer

from mcp_server.cli.common import err, load_settings, out, run
from mcp_server.redact import redact_url
from mcp_server.settings import Settings

app = typer.Typer(help="Database schema (Alembic) commands.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Upgrade the schema (adopting an unversioned one first)."""
    from mcp_server.services import schema

    report = run(schema.upgrade(load_settings(), revision))
    if report.adopted_at:
        out.print(f"Adopted an existing schema at revision {report.adopted_at}.")
    if report.migrated:
        out.print(f"Upgraded {report.from_revision or 'empty database'} -> {report.to_revision}.")
    else:
        out.print(f"Already at {report.to_revision}.")


@app.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument("-1", help="Target revision (`base` drops everything)."),
    yes: bool = typer.Option(False, "--yes", help="Confirm a downgrade that drops every table and all data."),
) -> None:
    """Downgrade the schema. One that reverts the first migration (`base`, `-N` far enough) drops every
    table, so it asks first (or takes --yes)."""
    from mcp_server.services import schema

    settings = load_settings()
    if not yes:
        current, head = run(schema.current(settings))
        if schema.downgrade_drops_everything(revision, current, head):
            _confirm_drop_everything(settings, revision)
    report = run(schema.downgrade(settings, revision))
    out.print(f"Downgraded {report.from_revision} -> {report.to_revision or 'base'}.")


def _confirm_drop_everything(settings: Settings, revision: str) -> None:
    where = redact_url(settings.database_url.get_secret_value()) if settings.database_url else str(settings.pgdata_dir)
    warning = (f"`db downgrade {revision}` drops every table of {where}: all memories, patterns and logged "
               "conversations, for every user.")
    if not sys.stdin.isatty():
        err.print(f"[red]error:[/red] {warning} Nothing was changed; pass --yes to do it anyway.", highlight=False,
                  soft_wrap=True)
        raise typer.Exit(2)
    answer = typer.prompt(f"{warning}\nType `drop everything` to go on", default="", show_default=False,
                          err=True)
    if answer.strip() != "drop everything":
        err.print("Nothing was changed.")
        raise typer.Exit(1)


@app.command("current")
def db_current() -> None:
    """Print the database's schema revision."""
    from mcp_server.services import schema

    revision, head = run(schema.current(load_settings()))
    suffix = " (head)" if revision == head else f" (head is {head})"
    out.print(f"{revision or 'none (empty database)'}{suffix}")


@app.command("history")
def db_history() -> None:
    """List the migrations."""
    from mcp_server.services import schema

    schema.history(load_settings(), sys.stdout)


@app.command("stamp")
def db_stamp(revision: str = typer.Argument(..., help="Revision to record without running migrations.")) -> None:
    """Record a revision in alembic_version without running migrations."""
    from mcp_server.services import schema

    report = run(schema.stamp(load_settings(), revision))
    out.print(f"Stamped {report.to_revision}.")


@app.command("revision")
def db_revision(message: str = typer.Option(..., "-m", "--message", help="What the revision does.")) -> None:
    """Create a new, empty migration file in migrations/versions."""
    from mcp_server.services import schema

    for path in schema.new_revision(load_settings(), message, sys.stdout):
        out.print(f"Created {path}")
