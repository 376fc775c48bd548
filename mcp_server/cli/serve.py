"""`aletheia-mcp serve`: the MCP server over stdio (what clients start) or streamable HTTP."""

from __future__ import annotations

import typer

from mcp_server.cli.common import err, fail, load_settings


def serve(
    transport: str = typer.Option("stdio", "--transport", "-t", help="stdio (default) or http."),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP: address to bind (non-loopback needs tokens)."),
    port: int = typer.Option(8765, "--port", help="HTTP: port."),
) -> None:
    """Run the MCP server: stdio (the client starts this command) or streamable HTTP at /mcp."""
    settings = load_settings()
    if transport not in ("stdio", "http"):
        err.print(f"[red]error:[/red] unknown transport {transport!r}; use stdio or http.")
        raise typer.Exit(2)
    try:
        if transport == "http":
            from mcp_server.http_transport import run_http

            run_http(settings, host, port)
        else:
            from mcp_server.server import run_stdio

            run_stdio(settings)
    except (Exception, BaseExceptionGroup) as exc:  # the lifespan's errors arrive wrapped in groups
        if _client_went_away(exc):
            return  # the client closed the pipe: nothing to report to anyone
        fail(exc)


def _client_went_away(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_client_went_away(inner) for inner in exc.exceptions)
    return isinstance(exc, BrokenPipeError | ConnectionResetError)
