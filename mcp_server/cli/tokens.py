"""`aletheia-mcp tokens add|list|revoke`: bearer tokens for the HTTP transport."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mcp_server.cli.common import err, load_settings, out
from mcp_server.errors import AletheiaError, InvalidInputError

if TYPE_CHECKING:
    from mcp_server.http_auth import TokenEntry

app = typer.Typer(help="Bearer tokens for the HTTP transport.", no_args_is_help=True)

DURATION = re.compile(r"\s*(\d{1,6})\s*([hdw])\s*")
UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def _tokens_file() -> Path:
    settings = load_settings()
    if settings.http_tokens_file is None:
        err.print("[red]error:[/red] set ALETHEIA_HTTP_TOKENS_FILE to the file that holds the tokens.")
        raise typer.Exit(1)
    return settings.http_tokens_file.expanduser()


def _exit_with(exc: AletheiaError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def expiry(expires_in: str | None, expires: str | None) -> datetime | None:
    """--expires-in 12h / 30d / 8w, or --expires YYYY-MM-DD (00:00 UTC that day) or an ISO date-time."""
    if expires_in is not None and expires is not None:
        raise InvalidInputError("Give --expires-in or --expires, not both.")
    if expires_in is not None:
        match = DURATION.fullmatch(expires_in)
        if match is None or int(match[1]) == 0:
            raise InvalidInputError(f"--expires-in {expires_in!r} is not a duration: write e.g. 12h, 30d or 8w.")
        return datetime.now(UTC) + int(match[1]) * UNIT[match[2]]
    if expires is not None:
        try:
            moment = datetime.fromisoformat(expires.strip())  # a bare date is midnight of that day
        except ValueError:
            raise InvalidInputError(f"--expires {expires!r} is not a date: write YYYY-MM-DD "
                                    "(or YYYY-MM-DDTHH:MM, UTC unless it names a zone).") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


@app.command("add")
def tokens_add(
    user: str = typer.Argument(..., help="The user id this token acts for."),
    label: str | None = typer.Option(None, help="A note, e.g. the machine it is for."),
    expires_in: str | None = typer.Option(None, "--expires-in", help="Expire after e.g. 12h, 30d or 8w."),
    expires: str | None = typer.Option(None, "--expires", help="Expire on YYYY-MM-DD (00:00 UTC)."),
) -> None:
    """Create a token for USER in ALETHEIA_HTTP_TOKENS_FILE and print it once (only its hash is stored)."""
    from mcp_server.http_auth import add_token

    path = _tokens_file()
    try:
        token = add_token(path, user, label, expiry(expires_in, expires))
    except AletheiaError as exc:
        raise _exit_with(exc) from None
    err.print(f"Token for {user.strip()} added to {path}. It is shown only now:", highlight=False)
    sys.stdout.write(token + "\n")


@app.command("list")
def tokens_list() -> None:
    """The tokens in ALETHEIA_HTTP_TOKENS_FILE: id, user, created, expiry, label (never a token or its hash)."""
    from mcp_server.http_auth import read_tokens

    path = _tokens_file()
    try:
        entries = read_tokens(path)
    except AletheiaError as exc:
        raise _exit_with(exc) from None
    rows = [("ID", "USER", "CREATED", "EXPIRES", "LABEL"), *(_row(entry) for entry in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        out.print("  ".join([*cells, row[4]]).rstrip(), highlight=False, markup=False, soft_wrap=True)
    err.print(f"{len(entries)} token(s) in {path}.", highlight=False)


def _row(entry: TokenEntry) -> tuple[str, str, str, str, str]:
    expires = "never"
    if entry.expires_at is not None:
        expires = _when(entry.expires_at) + (" (expired)" if entry.expired() else "")
    return entry.token_id, entry.user_id, _when(entry.created_at), expires, entry.label or ""


@app.command("revoke")
def tokens_revoke(
    id_or_user: str = typer.Argument(..., metavar="ID-OR-USER",
                                     help="A token id from `tokens list`, or a user id (all of that user's tokens)."),
) -> None:
    """Remove a token (or every token of a user); a running server refuses it from its next request."""
    from mcp_server.http_auth import revoke_tokens

    path = _tokens_file()
    try:
        removed = revoke_tokens(path, id_or_user)
    except AletheiaError as exc:
        raise _exit_with(exc) from None
    for entry in removed:
        label = f", {entry.label}" if entry.label else ""
        out.print(f"revoked {entry.token_id} ({entry.user_id}{label})", highlight=False, markup=False)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ") if moment else "-"
