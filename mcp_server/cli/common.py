"""What every command shares: the two consoles, settings, running a use case, failures, progress.

Results a person asked for go to stdout; logs and errors go to stderr. Every failure we
anticipate is one readable line and exit status 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress as ProgressBar

from mcp_server.errors import AletheiaError, ConnectionLostError, DatabaseRefusedError, InvalidInputError
from mcp_server.logs import configure_logging
from mcp_server.repository import check_project_name
from mcp_server.settings import Settings, announce_settings_source

if TYPE_CHECKING:
    from mcp_server.app_context import AppContext
    from mcp_server.services.progress import Progress, ProgressStart

T = TypeVar("T")

out = Console()
err = Console(stderr=True)

CONNECTION_LOST_MESSAGE = ("the database connection was lost ({name}). Work committed before this point is kept; "
                           "run the command again once PostgreSQL is back.")


def load_settings() -> Settings:
    try:
        settings = Settings()
    except Exception as exc:  # pydantic's ValidationError: show which setting is wrong
        err.print(f"[red]error:[/red] invalid settings: {exc}")
        raise typer.Exit(1) from None
    configure_logging(settings.log_level)
    announce_settings_source(settings)
    return settings


def explain(exc: BaseException) -> str | None:
    """The one-line message for an anticipated failure (looking inside exception groups), else None."""
    if isinstance(exc, ConnectionLostError):
        return CONNECTION_LOST_MESSAGE.format(name=exc.cause)
    if isinstance(exc, AletheiaError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:  # a file the command reads or writes
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    if isinstance(exc, OSError):  # the embedded server or the network went away outside a query
        return CONNECTION_LOST_MESSAGE.format(name=type(exc).__name__)
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = explain(inner)
            if found is not None:
                return found
    return None


def fail(exc: BaseException) -> NoReturn:
    """Exit with the readable message of an anticipated failure; re-raise anything else."""
    message = explain(exc)
    if message is None:
        raise exc
    if isinstance(exc, DatabaseRefusedError):  # what PostgreSQL said, for the person debugging it
        logging.getLogger(__name__).error("database error", exc_info=exc)
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a use case to completion, turning anticipated failures into one line on stderr."""
    try:
        return asyncio.run(coro)
    except (Exception, BaseExceptionGroup) as exc:
        fail(exc)


def project_option(help_text: str) -> Any:
    """The `--project` option of a command that reads or writes rows (checked before anything runs)."""
    return typer.Option(None, "--project", help=help_text, callback=_checked_project)


def _checked_project(ctx: typer.Context, value: str | None) -> str | None:
    if value is None or ctx.resilient_parsing:  # (resilient: shell completion, which must print nothing)
        return value
    try:
        return check_project_name(value, "--project")
    except InvalidInputError as exc:
        fail(exc)


def with_app(action: Callable[[AppContext], Awaitable[T]], *, load_embedder: bool = True,
             project: str | None = None) -> T:
    """Open the application (database, migrations, pool) without background work and run `action`;
    `project` (the `--project` option) replaces the detected project."""
    from mcp_server.app_context import open_app

    settings = load_settings()
    if project is not None:
        settings = settings.model_copy(update={"project": project})

    async def work() -> T:
        async with open_app(settings, load_in_background=False) as app:
            if load_embedder:
                await app.embedder.load_once()
            return await action(app)

    return run(work())


async def write_output(out_file: Path | None, write: Callable[[IO[str]], Awaitable[T]]) -> T:
    """Run `write` on stdout, or on `out_file`, opened only now: a command calls this once the
    database is reached, so a failure to connect leaves an existing file as it was."""
    if out_file is None:
        return await write(sys.stdout)
    with out_file.open("w", encoding="utf-8") as handle:
        return await write(handle)


@contextmanager
def progress(label: str) -> Iterator[ProgressStart]:
    """A progress bar on a terminal (stderr); `start(total)` gives the per-step callback."""
    bar = ProgressBar(console=err, disable=not err.is_terminal, transient=True)

    def start(total: int) -> Progress:
        task = bar.add_task(label, total=total)
        return lambda n: bar.advance(task, n)

    with bar:
        yield start
