"""Claude Code's hooks.

Reference: https://code.claude.com/docs/en/hooks (input on stdin, `hookSpecificOutput` on stdout).
Payloads measured with Claude Code 2.1.328 (tests/hooks/fixtures/claude-code/): every event has
session_id, transcript_path, cwd, hook_event_name; UserPromptSubmit, PreToolUse and Stop also
carry prompt_id (the transcript's promptId of the turn). Context from SessionStart and
UserPromptSubmit reaches the next request; from PreToolUse on Edit/Write only after the tool ran
(so conventions are given when the file is Read, and a new file's first Write is denied once).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

import pydantic

from mcp_server.hooks import transcripts
from mcp_server.hooks.clients.base import (
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
    Turn,
    TurnEnd,
)

NAME = "claude-code"
FILE_TOOLS: dict[str, Literal["read", "write", "edit"]] = {
    "Read": "read", "Write": "write", "Edit": "edit", "MultiEdit": "edit"}


class Common(SessionPayload):
    transcript_path: PathText | None = None


class SessionStartPayload(Common):
    source: Literal["startup", "resume", "clear", "compact"] = "startup"


class PromptPayload(Common):
    prompt: PromptText
    prompt_id: OptionalId = None


class FileInput(Payload):
    file_path: PathText


class FilePayload(Common):
    tool_name: str = pydantic.Field(max_length=200)
    tool_input: FileInput
    prompt_id: OptionalId = None


class StopPayload(Common):
    prompt_id: OptionalId = None
    last_assistant_message: str | None = None


TRANSCRIPT_WAIT_S = 5.0  # well within the stop hook's 30 s answer deadline (hooks/protocol.py)
TRANSCRIPT_POLL_S = 0.1


class ClaudeCodeAdapter:
    name = NAME
    transcript_wait_s = TRANSCRIPT_WAIT_S

    def parse(self, event: str, payload: Mapping[str, Any], *, cwd: str) -> HookEvent:
        check_event(NAME, event, ("session-start", "prompt", "file", "stop"))
        if event == "session-start":
            start = validate(SessionStartPayload, payload, client=NAME, event=event)
            return SessionStart(start.session(NAME, cwd), source=start.source)
        if event == "prompt":
            prompt = validate(PromptPayload, payload, client=NAME, event=event)
            return PromptSubmit(prompt.session(NAME, cwd), prompt=prompt.prompt, prompt_id=prompt.prompt_id)
        if event == "file":
            touch = validate(FilePayload, payload, client=NAME, event=event)
            return file_touch(NAME, touch.session(NAME, cwd), touch.tool_name, touch.tool_input.file_path, FILE_TOOLS,
                              prompt_id=touch.prompt_id)
        stop = validate(StopPayload, payload, client=NAME, event=event)
        turn = self._turn(stop.transcript_path, stop.prompt_id) if stop.transcript_path else None
        last = stop.last_assistant_message
        if turn is not None and last and not turn.assistant_text.endswith(last):
            # The last reply may not be flushed to the transcript yet (seen in the end-to-end test,
            # after earlier replies of the turn were): the payload has it.
            turn = replace(turn, assistant_text="\n\n".join(t for t in (turn.assistant_text, last) if t))
        return TurnEnd(stop.session(NAME, cwd), turn=turn, prompt_id=stop.prompt_id)

    def render(self, event: HookEvent, result: HookResult) -> str:
        return render_hook_specific(event, result, {SessionStart: "SessionStart", PromptSubmit: "UserPromptSubmit",
                                                    FileTouch: "PreToolUse"})

    def _turn(self, transcript_path: str, prompt_id: str | None) -> Turn | None:
        """The turn from the transcript, waiting a little for it: Claude Code writes its transcript in
        batches, so a short session's lines may reach the file only after its Stop hook has started.
        (The server runs parse in a worker thread, under the stop hook's deadline.)"""
        deadline = time.monotonic() + self.transcript_wait_s
        while True:
            turn = transcripts.read_claude_turn(transcript_path, prompt_id)
            if turn is not None or time.monotonic() >= deadline:
                return turn
            time.sleep(TRANSCRIPT_POLL_S)

