"""Claude Code (the real CLI, `make test-clients` installs it into .cache/node), run offline by the tests.

`run_claude` runs `claude -p PROMPT --output-format json` in a project with a temporary HOME and an
environment built from nothing (the developer's own ANTHROPIC_* settings never leak in), against a
local fake of the Anthropic Messages API: `FakeClaudeModel`, which answers each request with the
next step of a script (text, and a tool call or none). Nothing leaves the machine.

What Claude Code 2.1.328 does with hook output, as the fake model receives it (measured, see
../shared/FACTS.md): a hook's `additionalContext` arrives in a system-role message as
"<Event> hook additional context: TEXT" (`PreToolUse:Read` for a tool's hook); a PreToolUse deny
arrives as the tool's result, `is_error`, "PreToolUse:Write hook error: REASON".
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.gateway.fake_upstream import FakeUpstream, Received, Reply, anthropic_events
from tests.helpers import REPO_ROOT

CLAUDE_VERSION = "2.1.328"  # the Makefile's CLAUDE_VERSION
NODE_DIR = REPO_ROOT / ".cache" / "node"
CLAUDE = NODE_DIR / "node_modules" / ".bin" / "claude"
INSTALLED = NODE_DIR / f".claude-code-{CLAUDE_VERSION}"  # the Makefile's stamp: this version installed
RUN_TIMEOUT_S = 180  # a guard against a hang (a run takes seconds)


def installed_claude() -> Path:
    """The installed Claude Code, or the test fails saying how to install it (tests never download it)."""
    if not (INSTALLED.exists() and os.access(CLAUDE, os.X_OK)):
        pytest.fail(f"Claude Code {CLAUDE_VERSION} is not installed in {NODE_DIR}: run `make test-clients` (it "
                    "installs it there with npm; the tests drive the real client, never download it).",
                    pytrace=False)
    return CLAUDE


# --- the fake model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One answer of the fake model: `text`, then a call of `tool` with `input` (no tool: the turn ends)."""

    text: str
    tool: str | None = None
    input: dict[str, Any] | None = None


_tool_use_ids = itertools.count(1)  # Claude Code loops when two calls of a session share an id


def step_events(step: Step) -> list[tuple[str | None, Any]]:
    """The Anthropic stream (SSE events) of `step`."""
    events: list[tuple[str | None, Any]] = []
    for name, data in anthropic_events(step.text):
        if data.get("index") == 1:  # the fake upstream's tool_use block: this step's, or dropped
            if step.tool is None:
                continue
            if name == "content_block_start":
                data["content_block"] = {"type": "tool_use", "id": f"toolu_{next(_tool_use_ids)}",
                                         "name": step.tool, "input": {}}
            elif name == "content_block_delta":
                whole = json.dumps(step.input or {})
                first = data["delta"]["partial_json"].startswith("{")  # split in two, as the fake does
                data["delta"]["partial_json"] = whole[:10] if first else whole[10:]
        if name == "message_delta" and step.tool is None:
            data["delta"]["stop_reason"] = "end_turn"
        events.append((name, data))
    return events


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results a /v1/messages request carries, in order."""
    return [block for message in body["messages"] if isinstance(message["content"], list)
            for block in message["content"] if block.get("type") == "tool_result"]


class FakeClaudeModel(FakeUpstream):
    """/v1/messages answered from `script`: a request carrying N tool results gets step N (one
    session's requests grow one tool result per step), the last step once the script runs out.
    Set `script` before each run; other endpoints answer as the fake upstream does."""

    def __init__(self, script: Sequence[Step] = (Step("Done."),)) -> None:
        super().__init__()
        self.script = list(script)

    def default(self, method: str, path: str, body: Any) -> Reply:
        if path.split("?")[0] != "/v1/messages":
            return super().default(method, path, body)
        return Reply(events=step_events(self.script[min(len(tool_results(body)), len(self.script) - 1)]))

    def messages_calls(self) -> list[Received]:
        return [r for r in self.received if r.path.split("?")[0] == "/v1/messages"]

    def count_tokens_calls(self) -> list[Received]:
        return [r for r in self.received if r.path.split("?")[0] == "/v1/messages/count_tokens"]


# What Claude Code puts ahead of a hook's context in the request (the event, or event:tool).
_HOOK_CONTEXT = re.compile(r"(\w+(?::\w+)?) hook additional context: ")


def hook_contexts(body: dict[str, Any]) -> dict[str, str]:
    """Each hook's context in a request, by label ("SessionStart", "UserPromptSubmit",
    "PreToolUse:Read", ...). A context runs to the next label or to the end of its system message's
    text, so it may carry Claude Code's own text after it: test what it contains, not its end."""
    found: dict[str, str] = {}
    for message in body["messages"]:
        if message["role"] != "system":
            continue
        content = message["content"]
        texts = [content] if isinstance(content, str) else [b.get("text", "") for b in content]
        for text in texts:
            parts = _HOOK_CONTEXT.split(text)  # [before, label, context, label, context, ...]
            for label, context in zip(parts[1::2], parts[2::2], strict=True):
                found[label] = found.get(label, "") + context
    return found


# --- running Claude Code -----------------------------------------------------------------------


def claude_environment(api_url: str, home: Path, api_key: str = "sk-ant-test", **extra: str) -> dict[str, str]:
    """Claude Code's environment, built from nothing: offline against `api_url`, HOME `home`, plus
    `extra` (hooks inherit all of it)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": api_url, "ANTHROPIC_API_KEY": api_key,
        "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
        **extra,
    }


async def run_claude(claude: Path, project: Path, environment: dict[str, str], prompt: str,
                     *options: str) -> dict[str, Any]:
    """`claude -p PROMPT --output-format json OPTIONS` in `project`; its JSON result, which must be a success.

    Editing tools need `--permission-mode acceptEdits` (as root Claude Code refuses
    `--dangerously-skip-permissions`)."""
    with anyio.fail_after(RUN_TIMEOUT_S):
        done = await anyio.run_process([str(claude), "-p", prompt, "--output-format", "json", *options],
                                       cwd=project, env=environment, stdin=subprocess.DEVNULL, check=False)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"claude exited {done.returncode}: {stderr or stdout}"
    result: dict[str, Any] = json.loads(stdout)
    assert result["is_error"] is False, result
    return result


def transcript_path(home: Path, session_id: str) -> Path:
    """A session's transcript (JSONL), in $HOME/.claude/projects/<the project's path, mangled>/."""
    found = list((home / ".claude" / "projects").glob(f"*/{session_id}.jsonl"))
    assert len(found) == 1, f"no single transcript for session {session_id}: {found}"
    return found[0]
