"""`server_status`: version, database and its connection, schema, embedder and row counts."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from mcp_server.schemas import ServerStatus
from mcp_server.tools.runner import ToolContext, app_of, run_tool


def register(mcp: MCPServer) -> None:
    @mcp.tool(
        title="Server status",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def server_status(ctx: ToolContext) -> ServerStatus:
        """Report the server's health: version, database (never a password) and its connection (available,
        or reconnecting: attempts, next retry, last error), schema revision, pgvector, the embedder (ready,
        loading, or why it failed), and how many rows wait for an embedding. Answers while the database
        is down too."""
        return await run_tool(ctx, lambda: app_of(ctx).status.report())
