"""Codex CLI's hooks.

Reference: https://developers.openai.com/codex/hooks and the wire schemas in
openai/codex codex-rs/hooks/schema/generated/*.command.{input,output}.schema.json. Codex copies
Claude Code's shape: snake_case input with session_id, transcript_path (nullable), cwd,
hook_event_name, model; UserPromptSubmit and Stop carry turn_id (our prompt_id); SessionStart's
source is startup | resume | clear. Output is `hookSpecificOutput` with additionalContext
(SessionStart, UserPromptSubmit, PreToolUse) or a PreToolUse permissionDecision "deny".
PreToolUse fires for Bash, apply_patch and MCP tools only: Codex has no Read tool (it reads
with the shell), so file conventions come on apply_patch, whose tool_input.command (or .input)
is the patch; the first file it adds or updates is the one we look up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

import pydantic

from mcp_server.hooks import transcripts
from mcp_server.hooks.clients.base import (
    HookInputError,
    OptionalId,
    PathText,
    Payload,
    PromptText,
    SessionPayload,
    check_event,
    file_touch,
    render_hook_specific,
    validate,
)
from mcp_server.services.hook_events import (
    FileTouch,
    HookEvent,
    HookResult,
    PromptSubmit,
    SessionStart,
    TurnEnd,
)

NAME = "codex"
PATCH_TOOLS = ("apply_patch", "Edit", "Write")  # Edit and Write are Codex's matcher aliases of apply_patch
PATCH_FILE = re.compile(r"^\*\*\* (Add|Update) File: (.+?)\s*$", re.MULTILINE)
MAX_PATCH_CHARS = 10_000_000


class Common(SessionPayload):
    transcript_path: PathText | None = None
    model: str | None = None


class SessionStartPayload(Common):
    source: Literal["startup", "resume", "clear"] = "startup"


class PromptPayload(Common):
    prompt: PromptText
    turn_id: OptionalId = None


class PatchInput(Payload):
    command: str | None = pydantic.Field(default=None, max_length=MAX_PATCH_CHARS)
    input: str | None = pydantic.Field(default=None, max_length=MAX_PATCH_CHARS)


class FilePayload(Common):
    tool_name: str = pydantic.Field(max_length=200)
    tool_input: PatchInput
    turn_id: OptionalId = None


class StopPayload(Common):
    turn_id: OptionalId = None
    last_assistant_message: str | None = None


def patched_file(patch: str) -> tuple[str, Literal["write", "edit"]] | None:
    match = PATCH_FILE.search(patch)
    if match is None:
        return None
    return match.group(2), "write" if match.group(1) == "Add" else "edit"


class CodexAdapter:
    name = NAME

    def parse(self, event: str, payload: Mapping[str, Any], *, cwd: str) -> HookEvent:
        check_event(NAME, event, ("session-start", "prompt", "file", "stop"))
        if event == "session-start":
            start = validate(SessionStartPayload, payload, client=NAME, event=event)
            return SessionStart(start.session(NAME, cwd), source=start.source)
        if event == "prompt":
            prompt = validate(PromptPayload, payload, client=NAME, event=event)
            return PromptSubmit(prompt.session(NAME, cwd), prompt=prompt.prompt, prompt_id=prompt.turn_id)
        if event == "file":
            touch = validate(FilePayload, payload, client=NAME, event=event)
            if touch.tool_name not in PATCH_TOOLS:
                raise HookInputError(f"codex tool {touch.tool_name!r} is not a file tool: register the file hook "
                                     "with matcher apply_patch only")
            found = patched_file(touch.tool_input.command or touch.tool_input.input or "")
            if found is None:
                raise HookInputError("the codex apply_patch input names no file (no '*** Add File:' or "
                                     "'*** Update File:' line)")
            path, action = found
            return file_touch(NAME, touch.session(NAME, cwd), "apply_patch", path, {"apply_patch": action},
                              prompt_id=touch.turn_id)
        stop = validate(StopPayload, payload, client=NAME, event=event)
        turn = transcripts.read_codex_turn(stop.transcript_path, stop.turn_id) if stop.transcript_path else None
        if turn is not None:
            if not turn.assistant_text and stop.last_assistant_message:
                turn = replace(turn, assistant_text=stop.last_assistant_message)
            if turn.model is None and stop.model:
                turn = replace(turn, model=stop.model)
        return TurnEnd(stop.session(NAME, cwd), turn=turn, prompt_id=stop.turn_id)

    def render(self, event: HookEvent, result: HookResult) -> str:
        return render_hook_specific(event, result, {SessionStart: "SessionStart", PromptSubmit: "UserPromptSubmit",
                                                    FileTouch: "PreToolUse"})

