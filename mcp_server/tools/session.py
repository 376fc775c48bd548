"""Whose conversation a tool call belongs to (the key of per-session provenance).

Provenance (the memory and pattern ids a model was shown, attached to the next exchange it logs)
must never cross from one user to another. Over stdio (and the in-memory client) every client has
its own server lifespan, so the key is the same for every call. Over HTTP the lifespan is shared,
and the server is stateless: it issues no session ids, and an `mcp-session-id` header is whatever
the client chose, so two users may send the same one. The key is therefore the authenticated user
first, and the client's session header only tells that user's own clients apart.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context

SESSION_HEADER = "mcp-session-id"


def session_key(ctx: Context[Any, Any]) -> str:
    token = get_access_token()
    user = token.subject if token is not None else None  # None: the server's own user (stdio, loopback)
    # JSON: no user id or header value, whatever its characters, can spell another pair's key.
    return json.dumps([user, (ctx.headers or {}).get(SESSION_HEADER)])
