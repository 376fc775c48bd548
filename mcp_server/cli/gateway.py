"""`aletheia-mcp gateway`: the logging gateway for OpenAI- and Anthropic-API clients."""

from __future__ import annotations

import typer

from mcp_server.cli.common import fail, load_settings


def gateway(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (non-loopback needs tokens)."),
    port: int = typer.Option(8788, "--port", help="Port."),
) -> None:
    """Pass OpenAI- and Anthropic-API calls through to their upstreams and log every exchange.

    Point a client's base URL at http://HOST:PORT (Claude Code: ANTHROPIC_BASE_URL; the OpenAI SDK:
    base_url=http://HOST:PORT/v1). Upstreams: GATEWAY_OPENAI_UPSTREAM, GATEWAY_ANTHROPIC_UPSTREAM.
    """
    settings = load_settings()
    try:
        from mcp_server.gateway.app import run_gateway

        run_gateway(settings, host, port)
    except (Exception, BaseExceptionGroup) as exc:  # the lifespan's errors may arrive wrapped in groups
        fail(exc)
