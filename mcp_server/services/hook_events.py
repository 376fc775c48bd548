"""What a coding agent's hook reports, in one client-neutral form.

Client adapters (mcp_server/hooks/clients/) turn each client's payload into one of these events;
services/hooks.py answers it with a HookResult; the adapter renders that result in the client's
own format. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

SessionSource = Literal["startup", "resume", "clear", "compact"]


@dataclass(frozen=True)
class HookSession:
    """Who asks: the client, its session and the directory the agent works in."""

    client: str  # "claude-code", "codex", "gemini", "cursor"
    session_id: str
    cwd: str  # absolute; the project is the git repository containing it


@dataclass(frozen=True)
class SessionStart:
    session: HookSession
    source: SessionSource = "startup"


@dataclass(frozen=True)
class PromptSubmit:
    session: HookSession
    prompt: str
    prompt_id: str | None = None


@dataclass(frozen=True)
class FileTouch:
    """The agent is about to read, write or edit a file."""

    session: HookSession
    file_path: str  # as the client gave it: absolute, or relative to `session.cwd`
    tool: str  # the client's tool name: "Read", "Write", "Edit", ...
    action: Literal["read", "write", "edit"]
    new_file: bool = False  # a write that creates the file (it did not exist when the hook ran)
    prompt_id: str | None = None  # the turn it belongs to, when the client says (Claude Code, Codex)


@dataclass(frozen=True)
class ToolCall:
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    """One exchange of the agent's session, read from the client's transcript."""

    prompt: str
    assistant_text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    model: str | None = None
    prompt_id: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class TurnEnd:
    """The agent finished answering a prompt (Claude Code's Stop)."""

    session: HookSession
    turn: Turn | None  # None when the transcript could not be read: nothing is logged
    prompt_id: str | None = None


HookEvent = SessionStart | PromptSubmit | FileTouch | TurnEnd


@dataclass(frozen=True)
class HookResult:
    """What to tell the client: context to add, or (a new file's first write) a reason to refuse."""

    context: str | None = None
    deny_reason: str | None = None
    memory_ids: list[int] = field(default_factory=list)
    pattern_ids: list[int] = field(default_factory=list)
    logged_exchange_id: int | None = None

    @property
    def empty(self) -> bool:
        return self.context is None and self.deny_reason is None
