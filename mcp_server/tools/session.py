"""Which MCP session a tool call belongs to (for per-session provenance).

Over stdio (and the in-memory client) every client has its own server lifespan, so "local" is
enough. Over HTTP the lifespan is shared: a stateful session id, else the authenticated
principal, tells clients apart.
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context


def session_key(ctx: Context[Any, Any]) -> str:
    session_id = (ctx.headers or {}).get("mcp-session-id")
    if session_id:
        return f"session:{session_id}"
    token = get_access_token()
    if token is not None:
        return f"principal:{token.client_id}:{token.subject}"
    return "local"
