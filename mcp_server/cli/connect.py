"""`aletheia-mcp connect|disconnect CLIENT`: a client's MCP server entry and hooks (mcp_server/connect)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from mcp_server.cli.common import err, fail, out
from mcp_server.errors import AletheiaError

CLIENT_HELP = "claude-code, claude-desktop, cursor, codex, gemini or vscode."
SCOPE_HELP = ("project (the files in the git repository you are in; the default) or user (your own, for every "
              "project; claude-desktop has only this one).")
FOLLOW_HELP = ("In project scope, write through a symlink that leads outside the repository (refused otherwise: "
               "a cloned repository chooses its own symlinks).")


def connect(
    client: str | None = typer.Argument(None, help=CLIENT_HELP, show_default=False),
    scope: str | None = typer.Option(None, "--scope", help=SCOPE_HELP, show_default=False),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the change as a diff; write nothing."),
    list_: bool = typer.Option(False, "--list", help="Show which clients are connected, where."),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks", help=FOLLOW_HELP),
) -> None:
    """Write a client's MCP server entry (this aletheia-mcp, `serve`) and its hooks, keeping everything else."""
    try:
        if list_:
            _list()
        elif client is None:
            err.print("[red]error:[/red] name a client (" + CLIENT_HELP + "), or use --list.")
            raise typer.Exit(2)
        else:
            _change(client, scope, dry_run, follow_symlinks, remove=False)
    except AletheiaError as exc:
        fail(exc)


def disconnect(
    client: str = typer.Argument(..., help=CLIENT_HELP, show_default=False),
    scope: str | None = typer.Option(None, "--scope", help=SCOPE_HELP, show_default=False),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the change as a diff; write nothing."),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks", help=FOLLOW_HELP),
) -> None:
    """Remove our MCP server entry and our hooks from a client's files (nobody else's)."""
    try:
        _change(client, scope, dry_run, follow_symlinks, remove=True)
    except AletheiaError as exc:
        fail(exc)


def _places() -> object:
    from mcp_server.connect import Places
    from mcp_server.repository import repository_of_working_directory

    repository = repository_of_working_directory()
    return Places(Path.home(), repository.root if repository else None, os.environ, sys.platform)


def _change(client_name: str, scope_name: str | None, dry_run: bool, follow_symlinks: bool, *, remove: bool) -> None:
    from mcp_server import connect as api
    from mcp_server.connect.clients import client_named
    from mcp_server.connect.environment import shell_only_settings

    client = client_named(client_name)
    if scope_name not in (None, "project", "user"):
        err.print(f"[red]error:[/red] unknown scope {scope_name!r}; use project or user.", highlight=False)
        raise typer.Exit(2)
    scope: api.Scope = api.default_scope(client) if scope_name is None else scope_name  # type: ignore[assignment]
    places = _places()
    assert isinstance(places, api.Places)
    planned = api.plan(client.name, scope, places, None if remove else api.running_executable(), remove=remove,
                       follow_symlinks=follow_symlinks)
    changes = [c for c in planned.changes if c.changed]
    for note in planned.notes:
        err.print(f"note: {note}", highlight=False, soft_wrap=True)
    for change in changes:
        if change.symlink_target is not None:
            err.print(f"note: {change.path} is a symlink: the change {'would go' if dry_run else 'goes'} to "
                      f"{change.symlink_target}.", highlight=False, soft_wrap=True)
    if not changes:
        state = "not connected: nothing to remove" if remove else "already connected: nothing to change"
        out.print(f"{client.name} ({scope}): {state}.", highlight=False)
        return
    if dry_run:
        for change in changes:
            sys.stdout.write(change.diff())
        out.print("dry run: nothing was written.", highlight=False)
        return
    for change in changes:
        api.write(change)
        out.print(f"{'updated' if change.before is not None else 'created'} {change.path}", highlight=False,
                  soft_wrap=True)
    verb = "disconnected" if remove else "connected"
    out.print(f"{client.name} ({scope}): {verb}.", highlight=False)
    if remove:
        return
    hint = client.hint(scope, places)
    if hint:
        out.print(hint, highlight=False, soft_wrap=True)
    names, settings_file = shell_only_settings()
    if names:
        err.print(f"note: {', '.join(names)} {'is' if len(names) == 1 else 'are'} set in this shell but not in "
                  f"{settings_file}; the client may not pass {'it' if len(names) == 1 else 'them'} on to the server "
                  "or the hooks. Put settings in that file so that every process reads the same ones.",
                  highlight=False, soft_wrap=True)


def _list() -> None:
    from mcp_server import connect as api

    places = _places()
    assert isinstance(places, api.Places)
    running = api.running_executable()
    rows = api.status(places)
    width = max(len(r.client) for r in rows)
    for row in rows:
        if row.error is not None:
            what = f"unreadable: {row.error}"
        elif row.what is None:
            what = "-"
        elif row.what.command == running:
            what = row.what.text
        else:
            what = f"{row.what.text}, through {row.what.command} (not this aletheia-mcp, {running})"
        out.print(f"{row.client:<{width}}  {row.scope:<7}  {row.path}  {what}", highlight=False, soft_wrap=True)
