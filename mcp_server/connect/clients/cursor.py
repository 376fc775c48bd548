"""Cursor.

MCP servers (https://cursor.com/docs/context/mcp): `.cursor/mcp.json` (project) or `~/.cursor/mcp.json`
(user), `{"mcpServers": {...}}`. Hooks (https://cursor.com/docs/agent/hooks): `.cursor/hooks.json` or
`~/.cursor/hooks.json`, `{"version": 1, "hooks": {event: [{command, matcher?}]}}`, events in lower camel
case; `preToolUse` matches Cursor's tool types (Read, Write, Shell, ...).
"""

from __future__ import annotations

from mcp_server.connect.clients import Client, Places, Scope
from mcp_server.connect.parts import Hook, JsonHooks, JsonServer, Part

NAME = "cursor"
# Only sessionStart can add context in Cursor (see mcp_server/hooks/clients/cursor.py): its prompt
# and tool hooks may only allow or block, and its stop payload carries no exchange. A file's
# conventions reach Cursor through its own scoped rule files (`aletheia-mcp context generate
# --format cursor_mdc`), which it attaches per file itself.
HOOKS = (
    Hook("sessionStart", "session-start"),
)


def parts(scope: Scope, places: Places) -> list[Part]:
    folder = (places.project_root(NAME) if scope == "project" else places.home) / ".cursor"
    return [JsonServer(folder / "mcp.json"),
            JsonHooks(folder / "hooks.json", NAME, HOOKS, style="flat", header={"version": 1})]


CLIENT = Client(NAME, ("project", "user"), parts)
