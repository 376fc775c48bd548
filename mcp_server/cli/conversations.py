"""`aletheia-mcp conversations log|show|export|purge|replay`: logged LLM exchanges."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import cast

import typer

from mcp_server.cli.common import err, out, project_option, with_app, write_output
from mcp_server.schemas import ReplaySelection

app = typer.Typer(help="Logged LLM exchanges: log, show, export, purge.", no_args_is_help=True)


@app.command("log")
def conversations_log(
    project: str | None = project_option("Project (e.g. github.com/org/repo) the exchange belongs to; default: "
                                         "the git repository of the current directory (ALETHEIA_PROJECT)."),
) -> None:
    """Log one exchange read as JSON from stdin: {"messages": [...], "response": ..., "model": ...}.

    For hooks and scripts (e.g. a Claude Code Stop hook). Prints {id, request_id, redactions, created}."""
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
    logged = with_app(lambda a: a.conversations.log(**arguments), load_embedder=False, project=project)
    out.print_json(logged.model_dump_json())


@app.command("show")
def conversations_show(conversation_id: int = typer.Argument(..., help="The exchange's id.")) -> None:
    """Print one logged exchange as JSON (with the memory and pattern ids that were in context)."""
    conversation = with_app(lambda a: a.conversations.get(conversation_id), load_embedder=False)
    out.print_json(conversation.model_dump_json())


@app.command("export")
def conversations_export(
    since: str | None = typer.Option(None, help="ISO-8601 time, inclusive."),
    until: str | None = typer.Option(None, help="ISO-8601 time, exclusive."),
    model: str | None = typer.Option(None, help="Only this model."),
    out_file: Path | None = typer.Option(None, "--out", "-o", help="File to write (default: stdout)."),
    project: str | None = project_option("Only this project's exchanges (default: every "
                                         "project's)."),
    replays: str = typer.Option("include", "--replays", help="Exchanges re-sent by `conversations replay`: "
                                "include (with the originals), only (replays only) or exclude (originals only)."),
) -> None:
    """Write exchanges as JSONL for replay: messages, response, model, provider, request_id, created_at
    (and for gateway calls request, endpoint, usage, replay_of...)."""
    count = with_app(lambda a: write_output(out_file, lambda out: a.conversations.export_jsonl(
        out, since, until, model, project, cast(ReplaySelection, replays))), load_embedder=False)
    err.print(f"Exported {count} exchange(s).")


@app.command("purge")
def conversations_purge(
    older_than: int = typer.Option(..., "--older-than", min=1, help="Delete exchanges older than this many days."),
    project: str | None = project_option("Only this project's exchanges (default: every "
                                         "project's)."),
) -> None:
    """Delete the configured user's exchanges older than N days."""
    deleted = with_app(lambda a: a.conversations.purge(older_than, project), load_embedder=False)
    out.print(f"Deleted {deleted} exchange(s) older than {older_than} day(s).")


@app.command("replay")
def conversations_replay(
    upstream: str = typer.Option(..., help="Where to send them: the API's base URL, e.g. https://api.openai.com "
                                           "or http://127.0.0.1:8000 (a trailing /v1 is accepted)."),
    model: str = typer.Option(..., help="The model to replay with (replaces each request's model)."),
    since: str | None = typer.Option(None, help="Only exchanges logged at or after this ISO-8601 time."),
    until: str | None = typer.Option(None, help="Only exchanges logged before this ISO-8601 time."),
    from_model: str | None = typer.Option(None, "--from-model", help="Only exchanges with this model."),
    provider: str | None = typer.Option(None, help="Only this provider's exchanges (openai, anthropic)."),
    ids: list[int] | None = typer.Option(None, "--id", help="This exchange (repeat for several); selects "
                                                             "replays too."),
    limit: int | None = typer.Option(None, min=1, help="At most this many exchanges (the oldest first)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be sent; send nothing."),
) -> None:
    """Send logged requests again, to another upstream or model, and compare the answers.

    Each answer is stored as a new exchange linked to its original (replay_of). Credentials are
    yours: OPENAI_API_KEY (Authorization: Bearer) and ANTHROPIC_API_KEY (x-api-key), never stored
    ones. Prints, per exchange, whether the text is the same and the latency and tokens before and
    after, then a summary."""
    from mcp_server.cli.replay_output import run_replay
    from mcp_server.services.replay import ReplayCriteria

    criteria = ReplayCriteria(since=since, until=until, from_model=from_model, provider=provider,
                              ids=tuple(ids or ()), limit=limit)
    with_app(lambda a: run_replay(a, criteria, upstream, model, dry_run), load_embedder=False)
