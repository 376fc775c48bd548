"""Gemini CLI.

Settings (https://geminicli.com/docs/cli/configuration): `.gemini/settings.json` at the project root,
or `~/.gemini/settings.json` (GEMINI_CLI_HOME replaces the home folder); comments are allowed. MCP
servers under `mcpServers`; hooks (https://geminicli.com/docs/hooks/reference) under `hooks`: {Event:
[{matcher?, hooks: [{type: "command", command}]}]}, with BeforeAgent for a submitted prompt,
BeforeTool (matcher: a regex of tool names) and AfterAgent for the end of a turn.
"""

from __future__ import annotations

from pathlib import Path

from mcp_server.connect.clients import Client, Places, Scope
from mcp_server.connect.parts import Hook, JsonHooks, JsonServer, Part

NAME = "gemini"
HOOKS = (
    Hook("SessionStart", "session-start"),
    Hook("BeforeAgent", "prompt"),
    # BeforeTool can only refuse (a new file's first write, once, with its conventions as the reason);
    # AfterTool adds context to a tool's result, so conventions come with read_file, before any edit.
    Hook("BeforeTool", "file", "write_file"),
    Hook("AfterTool", "file", "read_file|replace"),
    Hook("AfterAgent", "stop"),
)


def parts(scope: Scope, places: Places) -> list[Part]:
    if scope == "project":
        folder = places.project_root(NAME) / ".gemini"
    else:
        folder = Path(places.environ.get("GEMINI_CLI_HOME") or places.home) / ".gemini"
    settings = folder / "settings.json"
    return [JsonServer(settings, format="jsonc"), JsonHooks(settings, NAME, HOOKS, format="jsonc")]


CLIENT = Client(NAME, ("project", "user"), parts)
