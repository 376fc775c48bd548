"""Cursor's hooks: session start only.

Reference: https://cursor.com/docs/agent/hooks (`.cursor/hooks.json`, version 1). Inputs carry
conversation_id, generation_id, workspace_roots and hook_event_name. Of Cursor's events only
sessionStart can add context to the agent (`{"additional_context": text}`);
beforeSubmitPrompt may only allow or block the prompt (`continue`, `user_message`),
preToolUse / beforeReadFile only allow or deny, afterFileEdit and afterAgentResponse are
observers, and the stop payload (status, loop_count) carries no exchange to log. So the prompt,
file and stop hooks are refused here with a reason (`connect` does not register them). The next
best thing for a file's conventions is Cursor's own scoped rule files (`aletheia-mcp context
generate --format cursor_mdc`: Cursor attaches each to the files its globs match), and for
memories the MCP tools.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pydantic

from mcp_server.hooks.clients.base import (
    MAX_PATH_CHARS,
    HookInputError,
    OptionalId,
    Payload,
    SessionId,
    capped,
    check_event,
    validate,
    working_directory,
)
from mcp_server.services.hook_events import HookEvent, HookResult, HookSession, SessionStart

NAME = "cursor"
WHY_NOT = ("Cursor's hooks cannot add context there (only sessionStart can); for a file's conventions use the "
           "rule files of `aletheia-mcp context generate --format cursor_mdc`, which Cursor attaches per file")


class SessionStartPayload(Payload):
    conversation_id: SessionId | None = None
    session_id: OptionalId = None
    workspace_roots: list[str] = pydantic.Field(default_factory=list, max_length=100)
    cwd: str | None = pydantic.Field(default=None, max_length=MAX_PATH_CHARS)


class CursorAdapter:
    name = NAME

    def parse(self, event: str, payload: Mapping[str, Any], *, cwd: str) -> HookEvent:
        check_event(NAME, event, ("session-start",), WHY_NOT)
        start = validate(SessionStartPayload, payload, client=NAME, event=event)
        session_id = start.conversation_id or start.session_id
        if not session_id:
            raise HookInputError("the cursor session-start hook payload is invalid (conversation_id: Field required)")
        # The first workspace root is the project (Cursor runs hooks from it as well).
        root = start.cwd or (start.workspace_roots[0] if start.workspace_roots else None)
        return SessionStart(HookSession(NAME, session_id, working_directory(root, cwd)))

    def render(self, event: HookEvent, result: HookResult) -> str:
        if not isinstance(event, SessionStart) or not result.context:
            return ""
        return json.dumps({"additional_context": capped(result.context)}, ensure_ascii=False)
