"""`aletheia-mcp tokens add`: bearer tokens for the HTTP transport."""

from __future__ import annotations

import sys

import typer

from mcp_server.cli.common import err, load_settings
from mcp_server.errors import AletheiaError

app = typer.Typer(help="Bearer tokens for the HTTP transport.", no_args_is_help=True)


@app.command("add")
def tokens_add(
    user: str = typer.Argument(..., help="The user id this token acts for."),
    label: str | None = typer.Option(None, help="A note, e.g. the machine it is for."),
) -> None:
    """Create a token for USER in ALETHEIA_HTTP_TOKENS_FILE and print it once (only its hash is stored)."""
    from mcp_server.http_auth import add_token

    settings = load_settings()
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
