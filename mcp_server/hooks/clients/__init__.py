"""One adapter per coding-agent client: its hook payload in, a neutral event out, its output back.

`parse` validates the payload (unknown fields ignored), makes paths absolute against the
payload's cwd and, for `stop`, reads the turn from the transcript; `render` writes what the client
expects on stdout ("" = print nothing). Every bad payload raises HookInputError, which the hook
runtime turns into exit 0 and one log line.
"""

from __future__ import annotations

from mcp_server.hooks.clients.base import EVENTS, ClientAdapter, HookInputError, load_payload
from mcp_server.hooks.clients.claude_code import ClaudeCodeAdapter
from mcp_server.hooks.clients.codex import CodexAdapter
from mcp_server.hooks.clients.cursor import CursorAdapter
from mcp_server.hooks.clients.gemini import GeminiAdapter

ADAPTERS: dict[str, ClientAdapter] = {
    adapter.name: adapter for adapter in (ClaudeCodeAdapter(), CodexAdapter(), GeminiAdapter(), CursorAdapter())}


def adapter_for(client: str) -> ClientAdapter:
    try:
        return ADAPTERS[client]
    except KeyError:
        raise HookInputError(f"unknown client {client!r}: expected one of {', '.join(ADAPTERS)}") from None


__all__ = ["ADAPTERS", "EVENTS", "ClientAdapter", "HookInputError", "adapter_for", "load_payload"]
