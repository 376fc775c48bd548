"""The `aletheia-mcp` command line (also `python -m mcp_server`).

Results a person asked for go to stdout; logs and errors go to stderr. Every failure we
anticipate is one readable line and exit status 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress

from mcp_server import __version__
from mcp_server.errors import AletheiaError
from mcp_server.logs import configure_logging
from mcp_server.settings import Settings

if TYPE_CHECKING:
    from mcp_server.app_context import AppContext
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


CONNECTION_LOST_MESSAGE = ("the database connection was lost ({name}). Work committed before this point is kept; "
                           "run the command again once PostgreSQL is back.")


def _explain(exc: BaseException) -> str | None:
    """The one-line message for an anticipated failure (looking inside exception groups), else None."""
    import asyncpg

    if isinstance(exc, AletheiaError):
        return str(exc)
    if isinstance(exc, OSError | asyncpg.PostgresConnectionError | asyncpg.InterfaceError | asyncpg.AdminShutdownError
                  | asyncpg.CrashShutdownError | asyncpg.CannotConnectNowError):
        return CONNECTION_LOST_MESSAGE.format(name=type(exc).__name__)
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _explain(inner)
            if found is not None:
                return found
    return None


def _fail(exc: BaseException) -> typer.Exit:
    message = _explain(exc)
    if message is None:
        raise exc
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except (Exception, BaseExceptionGroup) as exc:
        raise _fail(exc) from None


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


def _after_stdio_session(settings: Settings) -> None:
    """Once the stdio session is over, before the interpreter shuts down.

    The SDK hands fd 1 back to the client's pipe when it stops serving, but work abandoned
    mid-flight can still print: an embedder still loading in a thread imported huggingface_hub
    during shutdown, and its error message went to stdout. Later output goes to stderr instead.
    That same thread can keep the interpreter from reaching pgserver's exit hook before the
    client kills the process, leaving the embedded PostgreSQL running: release it now.
    """
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), 1)
    sys.stdout = sys.stderr
    if settings.database_url is None:
        from mcp_server.db.embedded import release_embedded_server

        release_embedded_server(settings.pgdata_dir)


@app.command()
def serve(
    transport: str = typer.Option("stdio", "--transport", "-t", help="stdio (default) or http."),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP: address to bind (non-loopback needs tokens)."),
    port: int = typer.Option(8765, "--port", help="HTTP: port."),
) -> None:
    """Run the MCP server: stdio (the client starts this command) or streamable HTTP at /mcp."""
    settings = _settings()
    if transport not in ("stdio", "http"):
        err.print(f"[red]error:[/red] unknown transport {transport!r}; use stdio or http.")
        raise typer.Exit(2)
    try:
        if transport == "http":
            from mcp_server.http_transport import run_http

            run_http(settings, host, port)
        else:
            from mcp_server.server import create_server

            try:
                create_server(settings).run()
            finally:
                _after_stdio_session(settings)
    except (Exception, BaseExceptionGroup) as exc:  # the lifespan's errors arrive wrapped in groups
        if _client_went_away(exc):
            return  # the client closed the pipe: nothing to report to anyone
        raise _fail(exc) from None


def _client_went_away(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_client_went_away(inner) for inner in exc.exceptions)
    return isinstance(exc, BrokenPipeError | ConnectionResetError)


@app.command()
def demo() -> None:
    """Start the server over stdio in a temporary data directory and drive it with the MCP client."""
    from mcp_server.demo import run_demo

    settings = _settings()
    raise typer.Exit(asyncio.run(run_demo(settings, out)))


@app.command()
def reembed(
    provider: str | None = typer.Option(None, help="Embedding provider to switch to."),
    model: str | None = typer.Option(None, help="Embedding model to switch to."),
    dim: int | None = typer.Option(None, help="New vector dimension (alters the columns, rebuilds indexes)."),
) -> None:
    """Embed rows waiting for a vector, or re-embed everything with another model or dimension."""
    from mcp_server.maintenance import run_reembed

    settings = _settings()
    changes = {k: v for k, v in {"embedding_provider": provider, "embedding_model": model,
                                 "embedding_dim": dim}.items() if v is not None}
    if changes:
        settings = Settings.model_validate({**settings.model_dump(), **changes})
    with _progress("embedding") as start:
        report = _run(run_reembed(settings, start))
    resized = f", vector columns resized {report.resized_from} -> {report.dimension}" if report.resized_from else ""
    out.print(f"Embedded {report.embedded} row(s) with {report.model}{resized}.", highlight=False)
    if changes:
        out.print("Now set " + " ".join(f"{k.upper()}={v}" for k, v in changes.items())
                  + " in your environment or .env so the server uses the same model.", highlight=False)


memories_app = typer.Typer(help="Export and import memories as JSONL.", no_args_is_help=True)
app.add_typer(memories_app, name="memories")


@memories_app.command("export")
def memories_export(
    out_file: Path | None = typer.Option(None, "--out", "-o", help="File to write (default: stdout)."),
) -> None:
    """Write the configured user's memories as JSONL (one object per line)."""
    from mcp_server.app_context import open_app
    from mcp_server.services.memory_io import export_jsonl

    settings = _settings()

    async def work() -> int:
        async with open_app(settings, load_in_background=False) as app_ctx, app_ctx.pool.acquire() as conn:
            if out_file is None:
                return await export_jsonl(conn, settings.user_id, sys.stdout)
            with out_file.open("w", encoding="utf-8") as handle:
                return await export_jsonl(conn, settings.user_id, handle)

    count = _run(work())
    err.print(f"Exported {count} memories.")


@memories_app.command("import")
def memories_import(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL file of memories."),
    embed: bool = typer.Option(True, "--embed/--no-embed", help="Embed the imported rows afterwards."),
) -> None:
    """Import memories from JSONL in bulk (COPY); lines already stored are skipped."""
    from mcp_server.app_context import open_app
    from mcp_server.services import reembed as reembed_service
    from mcp_server.services.memory_io import ImportReport, import_jsonl

    settings = _settings()
    total_lines = sum(1 for line in path.open(encoding="utf-8") if line.strip())

    async def work(start: Callable[[int], Callable[[int], None]]) -> tuple[ImportReport, int, str | None]:
        async with open_app(settings, load_in_background=False) as app_ctx, app_ctx.pool.acquire() as conn:
            with path.open(encoding="utf-8") as lines:
                report = await import_jsonl(conn, settings.user_id, lines, settings.max_content_chars,
                                            start(total_lines))
            if not embed:
                return report, 0, None
            try:
                await app_ctx.embedder.load_once()
                done = await reembed_service.embed_rows(
                    conn, app_ctx.embedder.embed_documents, app_ctx.embedder.model,
                    settings.embedding_batch_size, include_other_models=False,
                    tables=[reembed_service.MEMORIES],
                )
                return report, done, None
            except AletheiaError as exc:
                return report, 0, str(exc)

    with _progress("importing") as start:
        report, embedded, embed_error = _run(work(start))
    out.print(f"Read {report.read} line(s): {report.inserted} imported, {report.duplicates} already stored, "
              f"{len(report.rejected)} rejected.", highlight=False)
    for problem in report.rejected[:20]:
        err.print(f"  {path.name} {problem}", highlight=False)
    if embed_error:
        err.print(f"[yellow]warning:[/yellow] not embedded now ({embed_error}); they are found by keywords "
                  "meanwhile, and `aletheia-mcp reembed` embeds them later.", highlight=False, soft_wrap=True)
    elif embed:
        out.print(f"Embedded {embedded} row(s).")
    if report.rejected:
        raise typer.Exit(2)


patterns_app = typer.Typer(help="Import, export and list engineering patterns.", no_args_is_help=True)
app.add_typer(patterns_app, name="patterns")
context_app = typer.Typer(help="Write AI context files (AGENTS.md, CLAUDE.md, Cursor, Copilot).",
                          no_args_is_help=True)
app.add_typer(context_app, name="context")


def _with_app(action: Callable[[AppContext], Awaitable[T]]) -> T:
    """Open the application (database, migrations, pool) without background work and run `action`."""
    from mcp_server.app_context import open_app

    settings = _settings()

    async def work() -> T:
        async with open_app(settings, load_in_background=False) as app_ctx:
            await app_ctx.embedder.load_once()
            return await action(app_ctx)

    return _run(work())


@patterns_app.command("import")
def patterns_import(
    paths: list[Path] = typer.Argument(..., help="Rule files or folders (searched recursively)."),
) -> None:
    """Import Cursor (.mdc, .cursorrules), Copilot (*.instructions.md), AGENTS.md, CLAUDE.md and markdown rules.

    Identity is (file path relative to the working directory, title): re-importing updates."""
    from mcp_server.services.pattern_files import import_rule_files

    with _progress("importing rule files") as start:
        files_total = sum(1 for _ in _rule_files(paths))
        step = start(files_total)
        report = _with_app(lambda a: import_rule_files(a.patterns, paths, a.settings, step))
    out.print(f"{report.files} file(s): {report.created} pattern(s) created, {report.updated} updated, "
              f"{len(report.problems)} file(s) with problems.", highlight=False)
    for problem in report.problems:
        err.print(f"  {problem.path}: {problem.reason}", highlight=False, soft_wrap=True)
    if report.problems:
        raise typer.Exit(2)


def _rule_files(paths: list[Path]) -> list[Path]:
    from mcp_server.services.importers import RuleFileError, discover

    try:
        return list(discover(paths))
    except RuleFileError:
        return []


@patterns_app.command("export")
def patterns_export(directory: Path = typer.Argument(..., help="Folder to write markdown files into.")) -> None:
    """Write every pattern as markdown with front matter (imports back to the same patterns)."""
    from mcp_server.services.pattern_files import export_patterns

    async def work(app_ctx: AppContext) -> int:
        patterns = await app_ctx.patterns.all()
        return len(export_patterns(patterns, directory))

    count = _with_app(work)
    out.print(f"Exported {count} pattern(s) to {directory}.", highlight=False)


@patterns_app.command("list")
def patterns_list(
    tag: list[str] = typer.Option([], "--tag", help="Only patterns with this tag (repeatable)."),
    strategy_type: str | None = typer.Option(None, "--strategy-type"),
    limit: int = typer.Option(200, min=1, max=10_000),
) -> None:
    """Print the patterns as a table."""
    from rich.table import Table

    patterns = _with_app(lambda a: a.patterns.all(tags=tag or None, strategy_type=strategy_type, limit=limit))
    table = Table("id", "title", "strategy", "tags", "applies to", "source")
    for p in patterns:
        table.add_row(str(p.id), p.title or "", p.strategy_type or "", ", ".join(p.tags),
                      ", ".join(p.target_contexts) or "(everywhere)", p.source_path or "")
    out.print(table)


@context_app.command("generate")
def context_generate(
    fmt: str = typer.Option(..., "--format", "-f", help="agents_md, claude_md, cursor_mdc or copilot."),
    root: Path = typer.Option(Path("."), "--root", help="Repository root to write under."),
    path: list[str] = typer.Option([], "--path", help="Only patterns that apply to this file (repeatable)."),
    query: str | None = typer.Option(None, "--query", help="Only patterns relevant to this topic."),
    tag: list[str] = typer.Option([], "--tag", help="Only patterns with this tag (repeatable)."),
    max_patterns: int = typer.Option(50, "--max-patterns", min=1, max=200),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 (with a diff) if files are stale."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the diff; write nothing."),
) -> None:
    """Write context files under --root, replacing only the aletheia-marked section of existing files."""
    from mcp_server.services.pattern_files import apply_changes, generate_context_files, plan_context_files

    generated = _with_app(lambda a: generate_context_files(a.patterns, fmt, path or None, query, tag or None,
                                                           max_patterns))
    changes = [c for c in plan_context_files(root, fmt, generated) if c.changed]
    if check or dry_run:
        for change in changes:
            sys.stdout.write(change.diff())
        if check and changes:
            err.print(f"{len(changes)} file(s) differ from the pattern store; run without --check to update.")
            raise typer.Exit(1)
        if not changes:
            out.print("Up to date.")
        return
    apply_changes(root, changes)
    for change in changes:
        verb = "removed" if change.after is None else "created" if change.before is None else "updated"
        out.print(f"{verb} {change.path}", highlight=False)
    if not changes:
        out.print("Up to date.")


conversations_app = typer.Typer(help="Logged LLM exchanges: log, show, export, purge.", no_args_is_help=True)
app.add_typer(conversations_app, name="conversations")


@conversations_app.command("log")
def conversations_log() -> None:
    """Log one exchange read as JSON from stdin: {"messages": [...], "response": ..., "model": ...}.

    For hooks and scripts (e.g. a Claude Code Stop hook). Prints {id, request_id, redactions, created}."""
    import json

    try:
        exchange = json.loads(sys.stdin.read())
    except json.JSONDecodeError as exc:
        err.print(f"[red]error:[/red] stdin is not JSON: {exc.msg} (line {exc.lineno}).")
        raise typer.Exit(1) from None
    if not isinstance(exchange, dict):
        err.print("[red]error:[/red] stdin must hold one JSON object with `messages` and `response`.")
        raise typer.Exit(1)
    known = ("messages", "response", "provider", "model", "request_id", "status_code", "latency_ms")
    arguments = {k: exchange.get(k) for k in known}
    logged = _with_app(lambda a: a.conversations.log(**arguments))
    out.print_json(logged.model_dump_json())


@conversations_app.command("show")
def conversations_show(conversation_id: int = typer.Argument(..., help="The exchange's id.")) -> None:
    """Print one logged exchange as JSON (with the memory and pattern ids that were in context)."""
    conversation = _with_app(lambda a: a.conversations.get(conversation_id))
    out.print_json(conversation.model_dump_json())


@conversations_app.command("export")
def conversations_export(
    since: str | None = typer.Option(None, help="ISO-8601 time, inclusive."),
    until: str | None = typer.Option(None, help="ISO-8601 time, exclusive."),
    model: str | None = typer.Option(None, help="Only this model."),
    out_file: Path | None = typer.Option(None, "--out", "-o", help="File to write (default: stdout)."),
) -> None:
    """Write exchanges as JSONL for replay: messages, response, model, provider, request_id, created_at."""

    async def work(app_ctx: AppContext) -> int:
        count = 0
        handle = out_file.open("w", encoding="utf-8") if out_file else sys.stdout
        try:
            async for line in app_ctx.conversations.export(since, until, model):
                handle.write(line)
                count += 1
        finally:
            if out_file:
                handle.close()
        return count

    count = _with_app(work)
    err.print(f"Exported {count} exchange(s).")


@conversations_app.command("purge")
def conversations_purge(
    older_than: int = typer.Option(..., "--older-than", min=1, help="Delete exchanges older than this many days."),
) -> None:
    """Delete the configured user's exchanges older than N days."""
    deleted = _with_app(lambda a: a.conversations.purge(older_than))
    out.print(f"Deleted {deleted} exchange(s) older than {older_than} day(s).")


tokens_app = typer.Typer(help="Bearer tokens for the HTTP transport.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("add")
def tokens_add(
    user: str = typer.Argument(..., help="The user id this token acts for."),
    label: str | None = typer.Option(None, help="A note, e.g. the machine it is for."),
) -> None:
    """Create a token for USER in ALETHEIA_HTTP_TOKENS_FILE and print it once (only its hash is stored)."""
    from mcp_server.http_auth import add_token

    settings = _settings()
    if settings.http_tokens_file is None:
        err.print("[red]error:[/red] set ALETHEIA_HTTP_TOKENS_FILE to the file that should hold the tokens.")
        raise typer.Exit(1)
    try:
        token = add_token(settings.http_tokens_file, user, label)
    except AletheiaError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    err.print(f"Token for {user} added to {settings.http_tokens_file}. It is shown only now:")
    sys.stdout.write(token + "\n")


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int], Callable[[int], None]]]:
    """A progress bar on a terminal (stderr); `start(total)` gives the per-step callback."""
    progress = Progress(console=err, disable=not err.is_terminal, transient=True)

    def start(total: int) -> Callable[[int], None]:
        task = progress.add_task(label, total=total)
        return lambda n: progress.advance(task, n)

    with progress:
        yield start


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
    from mcp_server.db.schema_check import shipped_head

    # Revisions are numbered (0012, ...): the start-up fast path finds the head by number.
    next_id = f"{int(shipped_head()) + 1:04d}"
    script = command.revision(alembic_config(_settings(), stdout=sys.stdout), message=message, rev_id=next_id)
    scripts = script if isinstance(script, list) else [script]
    for s in scripts:
        if s is not None:
            out.print(f"Created {s.path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
