"""Claude Code (the real CLI, run by tests/claude_code.py) through the gateway.

`ANTHROPIC_BASE_URL` points Claude Code at the gateway (in-process, uvicorn on a free loopback
port), the gateway at a fake Anthropic API of this test's own. Claude Code runs `-p` in a temporary
project with a temporary HOME; nothing leaves the machine. The fake answers the first request with
a `Read` of a file in the project, so Claude Code makes a second request carrying the tool's result:
two calls of one session, each of which must be exactly one row.
"""

from __future__ import annotations

import json
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
from tests.claude_code import FakeClaudeModel, Step, claude_environment, installed_claude, run_claude
from tests.helpers import conversation_rows, free_port, make_settings, sql

pytestmark = pytest.mark.anyio

# Claude Code's key for the upstream: a string no redaction rule knows, so its absence from the
# database proves the gateway never copied it (not that redaction hid it).
API_KEY = f"test-credential-{uuid.uuid4().hex}"
PROJECT = "github.com/acme/claude-app"
NOTE = "the launch code word is pelican"
READING = "Let me read your notes."
FINAL = "Your notes say the launch code word is pelican."


# The fake model's script: a `Read` of the notes, then (the request carrying its result) the answer.
def script(note: Path) -> list[Step]:
    return [Step(READING, "Read", {"file_path": str(note)}), Step(FINAL)]


@pytest.fixture
def claude() -> Path:
    return installed_claude()


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


def response_text(response: dict[str, Any]) -> str:
    return "".join(block["text"] for block in response["content"] if block["type"] == "text")


async def test_claude_code_through_the_gateway_one_row_per_call(claude: Path, database_url: str,
                                                                tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    note = project / "notes.txt"
    note.write_text(NOTE + "\n")
    upstream = FakeClaudeModel(script(note))
    with upstream:
        settings = make_settings(database_url, tmp_path, gateway_anthropic_upstream=upstream.url,
                                 gateway_openai_upstream=upstream.url)
        async with running_gateway(settings) as gateway:
            # The project, as a user sets it: a header for the gateway.
            environment = claude_environment(gateway, home, API_KEY,
                                             ANTHROPIC_CUSTOM_HEADERS=f"Aletheia-Project: {PROJECT}")
            result = await run_claude(claude, project, environment, "What do my notes say?")
            # `/context` makes Claude Code count its context's tokens: count_tokens, never logged.
            await run_claude(claude, project, environment, "/context")
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
