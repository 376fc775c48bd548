"""The server as a real client starts it: a subprocess speaking JSON-RPC over stdio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.helpers import call, call_error, clean_env

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "raw-test", "version": "0"}}}


def request(request_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}


def test_stdout_carries_only_json_rpc_and_server_survives_a_tool_error(scratch_dir: Path, cli_cwd: Path) -> None:
    """First run (initdb + every migration) included: every stdout line must be a JSON-RPC message."""
    env = clean_env(ALETHEIA_DATA_DIR=str(scratch_dir / "data"), EMBEDDING_PROVIDER="hashing",
                    EMBEDDING_MODEL="hashing-v1", LOG_LEVEL="DEBUG")
    proc = subprocess.Popen([sys.executable, "-m", "mcp_server", "serve"], cwd=cli_cwd, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    messages = [
        INIT,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        request(2, "remember", {"content": "stdio keeps stdout clean"}),
        request(3, "forget", {"id": 424242}),  # a tool error
        request(4, "recall", {"query": "stdout clean"}),
    ]
    answers: dict[int, dict[str, Any]] = {}
    raw_lines: list[bytes] = []
    try:
        for message in messages:
            proc.stdin.write(json.dumps(message).encode() + b"\n")
            proc.stdin.flush()
            if "id" not in message:
                continue
            while message["id"] not in answers:  # keep stdin open until the answer is read
                line = proc.stdout.readline()
                assert line, proc.stderr.read().decode() if proc.stderr else ""
                raw_lines.append(line)
                parsed = json.loads(line)
                assert parsed["jsonrpc"] == "2.0"
                if "id" in parsed:
                    answers[parsed["id"]] = parsed
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    rest = proc.stdout.read()
    stderr = proc.stderr.read().decode() if proc.stderr else ""

    assert rest.strip() == b"", rest
    assert all(line.endswith(b"\n") and json.loads(line) for line in raw_lines)
    assert answers[2]["result"]["structuredContent"]["created"] is True
    assert answers[3]["result"]["isError"] is True
    assert "No memory with id 424242" in answers[3]["result"]["content"][0]["text"]
    assert answers[4]["result"]["structuredContent"]["results"][0]["content"] == "stdio keeps stdout clean"
    assert "migrated from empty" in stderr  # the logs went to stderr
    assert proc.returncode == 0


@pytest.mark.anyio
async def test_official_stdio_client_round_trip(database_url: str, cli_cwd: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server", "serve"], cwd=str(cli_cwd),
        env=clean_env(DATABASE_URL=database_url, EMBEDDING_PROVIDER="hashing", ALETHEIA_USER_ID="stdio-user"),
    )
    async with Client(params) as client:
        stored = await call(client, "remember", {"content": "over a real pipe", "metadata": {"via": "stdio"}})
        assert "empty" in await call_error(client, "remember", {"content": ""})
        found = await call(client, "recall", {"query": "real pipe"})
        assert found["results"][0]["id"] == stored["id"]
        status = await call(client, "server_status")
        assert status["user_id"] == "stdio-user"


def test_serve_with_unreachable_database_exits_with_one_line(cli_cwd: Path) -> None:
    env = clean_env(DATABASE_URL="postgresql://u:Pa55word-secret@127.0.0.1:1/db")
    proc = subprocess.run([sys.executable, "-m", "mcp_server", "serve"], cwd=cli_cwd, env=env, input=b"",
                          capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert b"127.0.0.1:1/db" in proc.stderr and b"Pa55word-secret" not in proc.stderr
