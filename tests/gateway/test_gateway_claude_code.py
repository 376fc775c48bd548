"""Claude Code (the real CLI, `make test` installs it into .cache/node) through the gateway.

`ANTHROPIC_BASE_URL` points Claude Code at the gateway (in-process, uvicorn on a free loopback
port), the gateway at a fake Anthropic API of this test's own. Claude Code runs `-p` in a temporary
project with a temporary HOME; nothing leaves the machine. The fake answers the first request with
a `Read` of a file in the project, so Claude Code makes a second request carrying the tool's result:
two calls of one session, each of which must be exactly one row.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvicorn

from mcp_server.gateway.app import build_gateway_app
from mcp_server.http_transport import server_config
from mcp_server.redact import Redactor
from mcp_server.settings import Settings
from tests.gateway.fake_upstream import FakeUpstream, Received, Reply, anthropic_events
from tests.helpers import REPO_ROOT, conversation_rows, free_port, make_settings, sql

pytestmark = pytest.mark.anyio

CLAUDE_VERSION = "2.1.328"  # the Makefile's CLAUDE_VERSION
NODE_DIR = REPO_ROOT / ".cache" / "node"
CLAUDE = NODE_DIR / "node_modules" / ".bin" / "claude"
INSTALLED = NODE_DIR / f".claude-code-{CLAUDE_VERSION}"  # the Makefile's stamp: this version installed
# Claude Code's key for the upstream: a string no redaction rule knows, so its absence from the
# database proves the gateway never copied it (not that redaction hid it).
API_KEY = f"test-credential-{uuid.uuid4().hex}"
PROJECT = "github.com/acme/claude-app"
NOTE = "the launch code word is pelican"
READING = "Let me read your notes."
FINAL = "Your notes say the launch code word is pelican."


def text_and_tool_events(text: str, tool: tuple[str, dict[str, Any]] | None) -> list[tuple[str | None, Any]]:
    """The fake's Anthropic stream with `text`, then a call of `tool` (name, input), or none."""
    events: list[tuple[str | None, Any]] = []
    for name, data in anthropic_events(text):
        if data.get("index") == 1:  # the fake's tool_use block: this tool's, or dropped
            if tool is None:
                continue
            if name == "content_block_start":
                data["content_block"] = {"type": "tool_use", "id": "toolu_read_1", "name": tool[0], "input": {}}
            elif name == "content_block_delta":
                whole = json.dumps(tool[1])
                first = data["delta"]["partial_json"].startswith("{")  # split in two, as the fake does
                data["delta"]["partial_json"] = whole[:10] if first else whole[10:]
        if name == "message_delta" and tool is None:
            data["delta"]["stop_reason"] = "end_turn"
        events.append((name, data))
    return events


class FakeAnthropic(FakeUpstream):
    """/v1/messages: a `Read` of `note` first; once the request carries the tool's result, the final text."""

    def __init__(self, note: Path) -> None:
        super().__init__()
        self.note = note

    def default(self, method: str, path: str, body: Any) -> Reply:
        if path.split("?")[0] != "/v1/messages":
            return super().default(method, path, body)
        last = body["messages"][-1]["content"]
        answered = isinstance(last, list) and any(block.get("type") == "tool_result" for block in last)
        if answered:
            return Reply(events=text_and_tool_events(FINAL, None))
        return Reply(events=text_and_tool_events(READING, ("Read", {"file_path": str(self.note)})))

    def messages_calls(self) -> list[Received]:
        return [r for r in self.received if r.path.split("?")[0] == "/v1/messages"]

    def count_tokens_calls(self) -> list[Received]:
        return [r for r in self.received if r.path.split("?")[0] == "/v1/messages/count_tokens"]


@pytest.fixture
def claude() -> Path:
    if not (INSTALLED.exists() and os.access(CLAUDE, os.X_OK)):
        pytest.fail(f"Claude Code {CLAUDE_VERSION} is not installed in {NODE_DIR}: run `make test-clients` (it "
                    "installs it there with npm; the gateway's tests drive the real client, never download it).",
                    pytrace=False)
    return CLAUDE


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[str]:
    """The gateway on a free loopback port until the block ends, then shut down (spool drained)."""
    app = build_gateway_app(settings, "127.0.0.1")
    port = free_port()
    server = uvicorn.Server(server_config(settings, app, "127.0.0.1", port))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve)
        with anyio.fail_after(60):  # a guard against a hang
            while not server.started:
                assert app.state.gateway.startup_error is None, app.state.gateway.startup_error
                await anyio.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


async def run_claude(claude: Path, gateway: str, project: Path, home: Path, prompt: str) -> dict[str, Any]:
    """`claude -p PROMPT --output-format json` in `project`, offline, against the gateway."""
    environment = {  # built from nothing: the developer's own ANTHROPIC_* settings must not leak in
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": gateway, "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_CUSTOM_HEADERS": f"Aletheia-Project: {PROJECT}",  # the project, as a user sets it
        "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
    }
    with anyio.fail_after(180):  # a guard against a hang
        done = await anyio.run_process([str(claude), "-p", prompt, "--output-format", "json"], cwd=project,
                                       env=environment, check=False)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"claude exited {done.returncode}: {stderr or stdout}"
    result: dict[str, Any] = json.loads(stdout)
    assert result["is_error"] is False, result
    return result


def response_text(response: dict[str, Any]) -> str:
    return "".join(block["text"] for block in response["content"] if block["type"] == "text")


async def test_claude_code_through_the_gateway_one_row_per_call(claude: Path, database_url: str,
                                                                tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    note = project / "notes.txt"
    note.write_text(NOTE + "\n")
    upstream = FakeAnthropic(note)
    with upstream:
        settings = make_settings(database_url, tmp_path, gateway_anthropic_upstream=upstream.url,
                                 gateway_openai_upstream=upstream.url)
        async with running_gateway(settings) as gateway:
            result = await run_claude(claude, gateway, project, home, "What do my notes say?")
            # `/context` makes Claude Code count its context's tokens: count_tokens, never logged.
            await run_claude(claude, gateway, project, home, "/context")
    calls, counted = upstream.messages_calls(), upstream.count_tokens_calls()

    # What Claude Code shows is what the fake upstream said.
    assert result["result"] == FINAL
    assert len(calls) == 2, [c.path for c in upstream.received]  # the Read, then the answer after it
    assert counted, "Claude Code's /context should have counted tokens"
    for received in upstream.received:  # everything went through untouched: key, session, query
        assert received.path.endswith("?beta=true"), received.path
        assert received.headers["x-api-key"] == API_KEY
        assert "aletheia-project" not in received.headers  # the gateway's header stays with it
    assert {c.headers["x-claude-code-session-id"] for c in calls} == {result["session_id"]}
    assert [c.body["stream"] for c in calls] == [True, True]

    rows = await conversation_rows(database_url)
    # Exactly one row per /v1/messages call Claude Code made; its count_tokens calls made none.
    assert len(rows) == len(calls)
    redactor = Redactor()
    for row, (index, received) in zip(rows, enumerate(calls), strict=True):
        # The row's id is the upstream's x-request-id of this very call (the fake numbers them).
        assert row["request_id"] == f"req_fake_{upstream.received.index(received) + 1}"
        body = received.body
        assert (row["provider"], row["endpoint"], row["model"]) == ("anthropic", "/v1/messages", body["model"])
        assert (row["status_code"], row["outcome"], row["stream"]) == (200, "completed", True)
        assert row["project_key"] == PROJECT
        # The request as Claude Code sent it (redacted as every write path is): its messages in
        # `messages`, the rest (system prompt, tools, parameters) in `request`.
        expected, _ = redactor.redact_json({"messages": body["messages"],
                                            "request": {k: v for k, v in body.items() if k != "messages"}})
        assert row["messages"] == expected["messages"]
        assert row["request"] == expected["request"]
        assert row["request"]["stream"] is True and {t["name"] for t in row["request"]["tools"]} >= {"Read"}
        # The response, assembled from the stream.
        assert row["usage"] == {"input_tokens": 7, "output_tokens": 9}
        assert row["ttft_ms"] is not None and row["latency_ms"] >= row["ttft_ms"]
        if index == 0:
            assert response_text(row["response"]) == READING
            assert row["response"]["stop_reason"] == "tool_use"
            tool_use = [b for b in row["response"]["content"] if b["type"] == "tool_use"]
            assert [(b["name"], b["input"]) for b in tool_use] == [("Read", {"file_path": str(note)})]
        else:
            assert response_text(row["response"]) == FINAL
            assert row["response"]["stop_reason"] == "end_turn"
            assert NOTE in json.dumps(row["messages"])  # the tool's result, as Claude Code sent it back

    # Nothing of the headers is stored: not the key, not Claude Code's beta flags.
    for secret in (API_KEY, calls[0].headers["anthropic-beta"]):
        leaked = await sql(database_url, "SELECT id FROM raw_conversations c "
                                         "WHERE strpos(row_to_json(c)::text, $1) > 0", secret)
        assert leaked == [], secret
