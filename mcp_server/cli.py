"""The `aletheia-mcp` command line (also `python -m mcp_server`).

Results a person asked for go to stdout; logs and errors go to stderr. Every failure we
anticipate is one readable line and exit status 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from mcp_server import __version__
from mcp_server.errors import AletheiaError
from mcp_server.logs import configure_logging
from mcp_server.settings import Settings

if TYPE_CHECKING:
    from mcp_server.db.engine import DatabaseTarget

T = TypeVar("T")

app = typer.Typer(
    name="aletheia-mcp",
    help="Long-term memory and engineering patterns for AI coding assistants (an MCP server).",
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (Alembic) commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")

out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    try:
        settings = Settings()
    except Exception as exc:  # pydantic's ValidationError: show which setting is wrong
        err.print(f"[red]error:[/red] invalid settings: {exc}")
        raise typer.Exit(1) from None
    configure_logging(settings.log_level)
    return settings


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except AletheiaError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        out.print(ctx.get_help())
        raise typer.Exit()


@app.command()
def doctor() -> None:
    """Check the database, pgvector, the schema revision and the embedding dimension."""
    from mcp_server.services.diagnostics import run_doctor

    settings = _settings()
    checks = _run(run_doctor(settings))
    for check in checks:
        mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
        out.print(f"{mark} {check.name}: {check.detail}", highlight=False, soft_wrap=True)
    failed = [c for c in checks if not c.ok]
    if failed:
        out.print(f"\n{len(failed)} problem(s) found.", highlight=False)
        raise typer.Exit(1)
    out.print("\nAll checks passed.")


@app.command()
def demo() -> None:
    """Show what the server does (for now: the start-up checks)."""
    doctor()


# --- db ------------------------------------------------------------------------------------


def _with_database(action: Callable[[DatabaseTarget, Settings], Awaitable[T]]) -> T:
    """Resolve the database (starting the embedded one if needed) and run `action` on it."""
    from mcp_server.db.engine import resolve_target

    settings = _settings()

    async def work() -> T:
        return await action(await resolve_target(settings), settings)

    return _run(work())


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Upgrade the schema (adopting an unversioned one first)."""
    from mcp_server.db import migrate

    report = _with_database(lambda target, settings: migrate.upgrade(target, settings, revision))
    if report.adopted_at:
        out.print(f"Adopted an existing schema at revision {report.adopted_at}.")
    if report.migrated:
        out.print(f"Upgraded {report.from_revision or 'empty database'} -> {report.to_revision}.")
    else:
        out.print(f"Already at {report.to_revision}.")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument("-1", help="Target revision (`base` drops everything).")) -> None:
    """Downgrade the schema."""
    from mcp_server.db import migrate

    report = _with_database(lambda target, settings: migrate.downgrade(target, settings, revision))
    out.print(f"Downgraded {report.from_revision} -> {report.to_revision or 'base'}.")


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision."""
    from mcp_server.db import migrate

    revision = _with_database(migrate.read_revision)
    head = migrate.head_revision(_settings())
    suffix = " (head)" if revision == head else f" (head is {head})"
    out.print(f"{revision or 'none (empty database)'}{suffix}")


@db_app.command("history")
def db_history() -> None:
    """List the migrations."""
    from alembic import command

    from mcp_server.db.migrate import alembic_config

    command.history(alembic_config(_settings(), stdout=sys.stdout), verbose=False)


@db_app.command("stamp")
def db_stamp(revision: str = typer.Argument(..., help="Revision to record without running migrations.")) -> None:
    """Record a revision in alembic_version without running migrations."""
    from mcp_server.db import migrate

    report = _with_database(lambda target, settings: migrate.stamp(target, settings, revision))
    out.print(f"Stamped {report.to_revision}.")


@db_app.command("revision")
def db_revision(message: str = typer.Option(..., "-m", "--message", help="What the revision does.")) -> None:
    """Create a new, empty migration file in migrations/versions."""
    from alembic import command

    from mcp_server.db.migrate import alembic_config

    script = command.revision(alembic_config(_settings(), stdout=sys.stdout), message=message)
    scripts = script if isinstance(script, list) else [script]
    for s in scripts:
        if s is not None:
            out.print(f"Created {s.path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
