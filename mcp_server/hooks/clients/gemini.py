"""Gemini CLI's hooks.

Reference: https://geminicli.com/docs/hooks/reference (google-gemini/gemini-cli
docs/hooks/reference.md). Every input has session_id, transcript_path, cwd, hook_event_name,
timestamp. SessionStart (source startup | resume | clear) and BeforeAgent (prompt) take
`hookSpecificOutput.additionalContext`; BeforeTool can only deny (`decision: "deny"` with a
`reason` the agent sees as the tool's error) or rewrite arguments; AfterTool appends
`hookSpecificOutput.additionalContext` to the tool's result. So a file's conventions are given
on AfterTool (after read_file, which comes before any edit) and a new file's first write is
refused on BeforeTool. AfterAgent carries the turn itself (`prompt`, `prompt_response`): no
transcript needed, but no tool calls, model or prompt id either. Gemini gives no id for a turn;
the payload's `timestamp` (ISO 8601, when AfterAgent fired, i.e. when the turn ended) tells two
turns with the same prompt apart: the service hashes it with the prompt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import pydantic

from mcp_server.hooks.clients.base import (
    HookInputError,
    PathText,
    Payload,
    PromptText,
    SessionPayload,
    capped,
    check_event,
    file_touch,
    validate,
)
from mcp_server.services.hook_events import (
    FileTouch,
    HookEvent,
    HookResult,
    PromptSubmit,
    SessionStart,
    Turn,
    TurnEnd,
)

NAME = "gemini"
FILE_TOOLS: dict[str, Literal["read", "write", "edit"]] = {
    "read_file": "read", "write_file": "write", "replace": "edit"}


class Common(SessionPayload):
    hook_event_name: str | None = None
    timestamp: str | None = pydantic.Field(default=None, max_length=100)


class SessionStartPayload(Common):
    source: Literal["startup", "resume", "clear"] = "startup"


class PromptPayload(Common):
    prompt: PromptText


class FileInput(Payload):
    file_path: PathText | None = None
    absolute_path: PathText | None = None  # read_file's older argument name


class FilePayload(Common):
    tool_name: str = pydantic.Field(max_length=200)
    tool_input: FileInput


class StopPayload(Common):
    prompt: PromptText
    prompt_response: str = ""


class GeminiAdapter:
    name = NAME

    def parse(self, event: str, payload: Mapping[str, Any], *, cwd: str) -> HookEvent:
        check_event(NAME, event, ("session-start", "prompt", "file", "stop"))
        if event == "session-start":
            start = validate(SessionStartPayload, payload, client=NAME, event=event)
            return SessionStart(start.session(NAME, cwd), source=start.source)
        if event == "prompt":
            prompt = validate(PromptPayload, payload, client=NAME, event=event)
            return PromptSubmit(prompt.session(NAME, cwd), prompt=prompt.prompt)
        if event == "file":
            touch = validate(FilePayload, payload, client=NAME, event=event)
            path = touch.tool_input.file_path or touch.tool_input.absolute_path
            if path is None:
                raise HookInputError("the gemini file hook payload is invalid (tool_input.file_path: Field required)")
            touched = file_touch(NAME, touch.session(NAME, cwd), touch.tool_name, path, FILE_TOOLS)
            if touch.hook_event_name == "AfterTool" and touched.new_file:
                # After the tool ran the file exists; only BeforeTool may see a new file.
                touched = FileTouch(touched.session, touched.file_path, touched.tool, touched.action)
            return touched
        stop = validate(StopPayload, payload, client=NAME, event=event)
        turn = Turn(prompt=stop.prompt, assistant_text=stop.prompt_response, ended_at=_moment(stop.timestamp))
        return TurnEnd(stop.session(NAME, cwd), turn=turn)

    def render(self, event: HookEvent, result: HookResult) -> str:
        if result.empty or isinstance(event, TurnEnd):
            return ""
        if isinstance(event, FileTouch):
            if result.deny_reason is not None:
                return json.dumps({"decision": "deny", "reason": capped(result.deny_reason)}, ensure_ascii=False)
            name = "AfterTool"
        else:
            name = "SessionStart" if isinstance(event, SessionStart) else "BeforeAgent"
        if not result.context:
            return ""
        return json.dumps({"hookSpecificOutput": {"hookEventName": name, "additionalContext": capped(result.context)}},
                          ensure_ascii=False)



def _moment(timestamp: str | None) -> datetime | None:
    """The payload's ISO 8601 `timestamp`, or None when missing or malformed (the turn is still
    logged; without it, the same prompt twice in a session is taken for one turn)."""
    if timestamp is None:
        return None
    try:
        return datetime.fromisoformat(timestamp)
    except ValueError:
        return None
