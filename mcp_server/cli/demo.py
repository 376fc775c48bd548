"""`aletheia-mcp demo`."""

from __future__ import annotations

import asyncio

import typer

from mcp_server.cli.common import load_settings, out


def demo() -> None:
    """Start the server over stdio in a temporary data directory and drive it with the MCP client."""
    from mcp_server.cli.demo_session import run_demo  # the MCP client is imported only for the demo

    raise typer.Exit(asyncio.run(run_demo(load_settings(), out)))
