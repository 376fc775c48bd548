"""Claude Desktop: user scope only, no hooks.

https://modelcontextprotocol.io/quickstart/user: `claude_desktop_config.json` in the app's
configuration folder (macOS `~/Library/Application Support/Claude`, Windows `%APPDATA%\\Claude`; on
Linux the unofficial builds use `~/.config/Claude`), `{"mcpServers": {name: {command, args, env}}}`.
"""

from __future__ import annotations

from mcp_server.connect.clients import Client, Places, Scope
from mcp_server.connect.parts import JsonServer, Part


def parts(scope: Scope, places: Places) -> list[Part]:
    return [JsonServer(places.app_config_dir() / "Claude" / "claude_desktop_config.json")]


def hint(scope: Scope, places: Places) -> str | None:
    return "Restart Claude Desktop to start the server. It has no hooks: the model calls the tools itself."


CLIENT = Client("claude-desktop", ("user",), parts, hint)
