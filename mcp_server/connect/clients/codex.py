"""Codex CLI.

MCP servers (https://developers.openai.com/codex/mcp, https://github.com/openai/codex/blob/main/docs/config.md):
`[mcp_servers.<name>]` with `command`, `args`, `env` in `~/.codex/config.toml` (CODEX_HOME moves it),
or `.codex/config.toml` in a project Codex trusts. Hooks (https://developers.openai.com/codex/hooks):
`hooks.json` beside that config.toml, Claude Code's format (`{"hooks": {Event: [{matcher?, hooks:
[{type: "command", command}]}]}}`), run only with `[features] codex_hooks = true`. Codex's PreToolUse
fires for its shell, apply_patch and MCP tools (codex-rs/core/src/tools/hook_names.rs names
apply_patch, with Write and Edit as matcher aliases); Codex reads files with the shell, so a file's
conventions come when it patches the file (mcp_server/hooks/clients/codex.py).
"""

from __future__ import annotations

from pathlib import Path

from mcp_server.connect.clients import Client, Places, Scope
from mcp_server.connect.parts import CodexToml, Hook, JsonHooks, Part

NAME = "codex"
HOOKS = (
    Hook("SessionStart", "session-start"),
    Hook("UserPromptSubmit", "prompt"),
    Hook("PreToolUse", "file", "apply_patch"),
    Hook("Stop", "stop"),
)


def _folder(scope: Scope, places: Places) -> Path:
    if scope == "project":
        return places.project_root(NAME) / ".codex"
    configured = places.environ.get("CODEX_HOME")
    return Path(configured) if configured else places.home / ".codex"


def parts(scope: Scope, places: Places) -> list[Part]:
    folder = _folder(scope, places)
    return [CodexToml(folder / "config.toml", enable_hooks=places.hooks_run),
            JsonHooks(folder / "hooks.json", NAME, HOOKS)]


def hint(scope: Scope, places: Places) -> str | None:
    if scope == "project":
        return ("Codex reads a project's .codex/ only when it trusts the project (it asks on first start); "
                "`--scope user` works everywhere.")
    return None


CLIENT = Client(NAME, ("project", "user"), parts, hint)
