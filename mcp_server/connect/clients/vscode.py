"""VS Code (GitHub Copilot's agent mode): an MCP server, no hooks of ours.

https://code.visualstudio.com/docs/copilot/reference/mcp-configuration: `.vscode/mcp.json` in the
workspace or `mcp.json` in the user profile (`Code/User/` in the app's configuration folder), JSONC,
`{"servers": {name: {"type": "stdio", command, args, env}}, "inputs": []}`. No hooks are written: VS Code
is not one of the hook command's clients (claude-code, codex, gemini, cursor).
"""

from __future__ import annotations

from mcp_server.connect.clients import Client, Places, Scope
from mcp_server.connect.parts import JsonServer, Part


def parts(scope: Scope, places: Places) -> list[Part]:
    if scope == "project":
        path = places.project_root("vscode") / ".vscode" / "mcp.json"
    else:
        path = places.app_config_dir() / "Code" / "User" / "mcp.json"
    return [JsonServer(path, container=("servers",), format="jsonc", extra={"type": "stdio"})]


CLIENT = Client("vscode", ("project", "user"), parts)
