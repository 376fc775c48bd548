"""Claude Code.

MCP servers (https://docs.anthropic.com/en/docs/claude-code/mcp, "MCP installation scopes"): project
scope is `.mcp.json` at the project root, `{"mcpServers": {name: {command, args, env}}}`; user scope
is the top-level `mcpServers` of `~/.claude.json`. Hooks (https://docs.anthropic.com/en/docs/claude-code/hooks):
`{"hooks": {Event: [{matcher?, hooks: [{type: "command", command}]}]}}` in any settings file
(https://docs.anthropic.com/en/docs/claude-code/settings): `~/.claude/settings.json` (user),
`.claude/settings.json` (project, shared with the team) or `.claude/settings.local.json` (project,
"not checked in, useful for personal preferences"; Claude Code git-ignores it when it creates it, and
`connect` makes sure git ignores it when we create it). CLAUDE_CONFIG_DIR moves `~/.claude` and
`.claude.json`.
"""

from __future__ import annotations

from pathlib import Path

from mcp_server.connect.clients import Client, Places, Scope
from mcp_server.connect.parts import Hook, JsonHooks, JsonServer, Part, Retired

NAME = "claude-code"
HOOKS = (
    Hook("SessionStart", "session-start"),  # no matcher: every source (startup, resume, clear, compact)
    Hook("UserPromptSubmit", "prompt"),
    # The file's conventions: given on Read (Claude Code makes the agent read a file before it edits
    # it; PreToolUse context on Edit/Write arrives only after the tool ran) and on Write of a new file.
    Hook("PreToolUse", "file", "Read|Write|Edit|MultiEdit"),
    Hook("Stop", "stop"),
)


def _user_dir(places: Places) -> Path:
    configured = places.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured) if configured else places.home / ".claude"


def parts(scope: Scope, places: Places) -> list[Part]:
    if scope == "project":
        root = places.project_root(NAME)
        # The hooks name this machine's path of aletheia-mcp, so they go to the personal, git-ignored
        # settings.local.json, never to the team's settings.json (where an earlier connect put them:
        # removed from there, so connecting again moves them and disconnect finds them).
        return [JsonServer(root / ".mcp.json"),
                JsonHooks(root / ".claude" / "settings.local.json", NAME, HOOKS, personal=True),
                Retired(JsonHooks(root / ".claude" / "settings.json", NAME, HOOKS))]
    configured = places.environ.get("CLAUDE_CONFIG_DIR")
    state = Path(configured) / ".claude.json" if configured else places.home / ".claude.json"
    return [JsonServer(state), JsonHooks(_user_dir(places) / "settings.json", NAME, HOOKS)]


def hint(scope: Scope, places: Places) -> str | None:
    if scope != "project" or places.root is None or not places.hooks_run:
        return None
    return (f"Claude Code runs these project hooks only when `claude` starts at the repository root ({places.root}); "
            f"to have them wherever it starts, run `aletheia-mcp connect {NAME} --scope user`.")


CLIENT = Client(NAME, ("project", "user"), parts, hint)
