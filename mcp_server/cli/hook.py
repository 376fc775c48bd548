"""`aletheia-mcp hook EVENT` (a coding agent's hook) and `aletheia-mcp hook-server` (its background process).

The installed `aletheia-mcp hook ...` never reaches this module: mcp_server/entry.py runs the hook
client before typer loads. This command is what `--help` shows and what `python -m mcp_server hook`
runs; it calls the same client.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import typer

from mcp_server.cli.common import err, fail, load_settings
from mcp_server.hooks.protocol import CLIENTS, DEFAULT_CLIENT, EVENTS


def hook(
    event: str = typer.Argument(..., help=f"The hook: {', '.join(EVENTS)}."),
    client: str = typer.Option(DEFAULT_CLIENT, "--client", help=f"The coding agent: {', '.join(CLIENTS)}."),
) -> None:
    """Answer a coding agent's hook: its JSON on stdin, what it expects on stdout.

    `aletheia-mcp connect CLIENT` registers these commands with the agent.

    When a hook cannot answer, it prints nothing and exits 0 (never blocking the agent); the reason goes
    to stderr and to DATA_DIR/logs/hooks.log.

    The first hook starts a background process that keeps the database and the embedder warm; it exits
    after HOOK_SERVER_IDLE_S seconds without a hook.
    """
    from mcp_server.hooks.client import main

    raise typer.Exit(main([event, "--client", client]))


def hook_server(
    socket_path: Path = typer.Option(..., "--socket", help="The Unix socket to listen on."),
) -> None:
    """The hooks' background process (started by the first hook; not meant to be run by hand)."""
    settings = load_settings()
    from mcp_server.hooks.server import exit_without_waiting_for_threads, run_hook_server

    try:
        run_hook_server(settings, socket_path)
    except (Exception, BaseExceptionGroup) as exc:  # the application's start-up errors may arrive in groups
        # The embedder may still be loading in a worker thread that nothing can interrupt: once the reason
        # is printed (the log's last line, which the hook reports), end without waiting for it.
        exit_without_waiting_for_threads(report_start_failure(exc))


def report_start_failure(exc: BaseException) -> int:
    """Print why the server stopped (a traceback for a bug) and return the exit status."""
    from mcp_server.hooks.protocol import HookFailure

    failure = exc
    while isinstance(failure, BaseExceptionGroup):  # (from inside the application's task group)
        found = failure.split(HookFailure)[0]
        if found is None:
            break
        failure = found.exceptions[0]
    if isinstance(failure, HookFailure):
        err.print(f"[red]error:[/red] {failure}", highlight=False, soft_wrap=True)
        return 1
    try:
        fail(exc)
    except typer.Exit as done:
        return done.exit_code
    except BaseException:  # (fail re-raises what it cannot explain: a bug)
        traceback.print_exception(exc)
    return 1
