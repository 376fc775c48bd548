"""The `aletheia-mcp` command line (also `python -m mcp_server`): one module per command group.

Each command is one use-case call (a service, through the application or a standalone function)
plus printing; `common.py` holds what they share. Heavy imports happen inside the commands, so
`aletheia-mcp --help` and light commands start fast.
"""

from __future__ import annotations

import typer

from mcp_server import __version__
from mcp_server.cli import (
    connect,
    context,
    conversations,
    db,
    demo,
    doctor,
    gateway,
    hook,
    memories,
    models,
    patterns,
    projects,
    reembed,
    serve,
    tokens,
)
from mcp_server.cli.common import out

app = typer.Typer(
    name="aletheia-mcp",
    help="Long-term memory and engineering patterns for AI coding assistants (an MCP server).",
    add_completion=False,
    pretty_exceptions_enable=False,
)


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


# The order here is the order of `aletheia-mcp --help`.
app.command()(doctor.doctor)
app.command()(serve.serve)
app.command()(demo.demo)
app.command()(gateway.gateway)
app.command()(connect.connect)
app.command()(connect.disconnect)
app.command()(hook.hook)
app.command(name="hook-server", hidden=True)(hook.hook_server)
app.command()(reembed.reembed)
app.add_typer(db.app, name="db")
app.add_typer(memories.app, name="memories")
app.add_typer(models.app, name="models")
app.add_typer(patterns.app, name="patterns")
app.add_typer(context.app, name="context")
app.add_typer(conversations.app, name="conversations")
app.add_typer(projects.app, name="projects")
app.add_typer(tokens.app, name="tokens")


def main() -> None:
    app()
