"""What every client adapter shares: the error, payload validation, and path handling."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Protocol, TypeVar

import pydantic

from mcp_server.errors import InvalidInputError
from mcp_server.services.hook_events import FileTouch, HookEvent, HookResult, HookSession

# The neutral event names of `aletheia-mcp hook EVENT`.
EVENTS = ("session-start", "prompt", "file", "stop")

MAX_PROMPT_CHARS = 200_000  # far above any typed prompt; a bigger one is not a prompt we should embed
MAX_ID_CHARS = 200  # session and prompt ids (they end up in request_id, MAX_SOURCE_CHARS)
MAX_PATH_CHARS = 4_096  # PATH_MAX on Linux
# Claude Code replaces additionalContext over 10,000 characters by a saved file and a preview;
# the service keeps within HOOK_CONTEXT_CHARS (<= 10,000), this is the last guard.
MAX_RENDERED_CONTEXT = 10_000


class HookInputError(InvalidInputError):
    """A hook payload we cannot use: not JSON, wrong shape, unknown event or client."""


class ClientAdapter(Protocol):
    name: str

    def parse(self, event: str, payload: Mapping[str, Any], *, cwd: str) -> HookEvent: ...

    def render(self, event: HookEvent, result: HookResult) -> str: ...  # "" = print nothing


class Payload(pydantic.BaseModel):
    """Base of every payload model: unknown fields are ignored (clients add fields often)."""

    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)


SessionId = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
OptionalId = Annotated[str, pydantic.StringConstraints(max_length=MAX_ID_CHARS)] | None
PromptText = Annotated[str, pydantic.StringConstraints(max_length=MAX_PROMPT_CHARS)]
PathText = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=MAX_PATH_CHARS)]

M = TypeVar("M", bound=Payload)


def load_payload(text: str | bytes) -> dict[str, Any]:
    """The hook's stdin as a JSON object, or a HookInputError saying what is wrong with it."""
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HookInputError(f"the hook payload is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise HookInputError(f"the hook payload must be a JSON object, not {type(value).__name__}")
    return value


def validate(model: type[M], payload: Mapping[str, Any], *, client: str, event: str) -> M:
    if not isinstance(payload, Mapping):
        raise HookInputError(f"the {client} {event} hook payload must be a JSON object, not {type(payload).__name__}")
    try:
        return model.model_validate(payload)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
        raise HookInputError(f"the {client} {event} hook payload is invalid ({problems})") from None


def check_event(client: str, event: str, supported: tuple[str, ...], why: str = "") -> None:
    if event in supported:
        return
    if event in EVENTS:
        raise HookInputError(f"{client} has no `{event}` hook here{': ' + why if why else ''}")
    raise HookInputError(f"unknown hook event {event!r}: expected one of {', '.join(EVENTS)}")


def working_directory(payload_cwd: str | None, cwd: str) -> str:
    """The payload's cwd (absolute against the hook process's own), else the hook process's."""
    base = os.path.abspath(cwd)
    return os.path.normpath(os.path.join(base, payload_cwd)) if payload_cwd else base


class SessionPayload(Payload):
    """What every event of Claude Code, Codex and Gemini CLI carries: the session and where it works."""

    session_id: SessionId
    cwd: PathText | None = None

    def session(self, client: str, cwd: str) -> HookSession:
        return HookSession(client, self.session_id, working_directory(self.cwd, cwd))


def absolute_path(path: str, cwd: str) -> str:
    return os.path.normpath(os.path.join(cwd, os.path.expanduser(path)))


def is_new_file(path: str) -> bool:
    """Nothing at the path yet (a dangling symlink counts as existing: writing follows it)."""
    return not os.path.lexists(path)


def capped(text: str) -> str:
    if len(text) <= MAX_RENDERED_CONTEXT:
        return text
    marker = "\n[... shortened]"
    return text[: MAX_RENDERED_CONTEXT - len(marker)] + marker


def file_touch(client: str, session: HookSession, tool: str, path: str,
               tools: Mapping[str, Literal["read", "write", "edit"]], prompt_id: str | None = None) -> FileTouch:
    action = tools.get(tool)
    if action is None:
        raise HookInputError(f"{client} tool {tool!r} is not a file tool: register the file hook for "
                             f"{', '.join(tools)} only")
    full = absolute_path(path, session.cwd)
    new_file = action == "write" and is_new_file(full)
    return FileTouch(session, file_path=full, tool=tool, action=action, new_file=new_file, prompt_id=prompt_id)


def render_hook_specific(event: HookEvent, result: HookResult, native: Mapping[type, str]) -> str:
    """Claude Code's (and Codex's) output: additionalContext, or a PreToolUse deny."""
    name = native.get(type(event))
    if name is None or result.empty:
        return ""
    output: dict[str, Any] = {"hookEventName": name}
    if result.deny_reason is not None and isinstance(event, FileTouch):
        output |= {"permissionDecision": "deny", "permissionDecisionReason": capped(result.deny_reason)}
    elif result.context:
        output["additionalContext"] = capped(result.context)
    else:
        return ""
    return json.dumps({"hookSpecificOutput": output}, ensure_ascii=False)
