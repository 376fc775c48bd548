"""`aletheia-mcp conversations log/show/export/purge` and retention at start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import clean_env, sql

pytestmark = pytest.mark.anyio


def run_cli(args: list[str], cwd: Path, url: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_server", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(DATABASE_URL=url, EMBEDDING_PROVIDER="hashing", ALETHEIA_USER_ID="cli", **env),
    )


async def test_log_show_export_and_purge(database_url: str, cli_cwd: Path, tmp_path: Path) -> None:
    exchange = {
        "messages": [{"role": "user", "content": "deploy with token ghp_" + "a1B2" * 9}],
        "response": {"content": "done"},
        "model": "claude-x",
        "provider": "anthropic",
        "request_id": "hook-1",
        "status_code": 200,
        "latency_ms": 850,
    }
    logged = run_cli(["conversations", "log"], cli_cwd, database_url, json.dumps(exchange))
    assert logged.returncode == 0, logged.stderr
    result = json.loads(logged.stdout)
    assert result["request_id"] == "hook-1" and result["redactions"] == 1 and result["created"] is True
    assert (
        json.loads(run_cli(["conversations", "log"], cli_cwd, database_url, json.dumps(exchange)).stdout)["created"]
        is False
    )
    bad = run_cli(["conversations", "log"], cli_cwd, database_url, "{not json")
    assert bad.returncode == 1 and "not JSON" in bad.stderr

    shown = json.loads(run_cli(["conversations", "show", str(result["id"])], cli_cwd, database_url).stdout)
    assert shown["messages"][0]["content"] == "deploy with token [REDACTED:github_token]"

    await sql(
        database_url,
        "INSERT INTO raw_conversations (created_at, request_id, user_id, model, messages, response) "
        "VALUES (now() - interval '40 days', 'old-1', 'cli', 'gpt-4o', "
        '\'[{"role": "user", "content": "old"}]\', \'"ancient"\'), '
        "(now() - interval '40 days', 'other-user', 'someone', 'gpt-4o', '[]', 'null')",
    )
    out_file = tmp_path / "export.jsonl"
    exported = run_cli(["conversations", "export", "--out", str(out_file)], cli_cwd, database_url)
    assert "Exported 2 exchange(s)." in exported.stderr
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [line["request_id"] for line in lines] == ["old-1", "hook-1"]  # oldest first, only this user's
    assert lines[1]["messages"] == shown["messages"] and lines[1]["response"] == {"content": "done"}
    assert set(lines[1]) >= {"messages", "response", "model", "provider", "request_id", "created_at"}
    only_claude = run_cli(["conversations", "export", "--model", "claude-x"], cli_cwd, database_url)
    assert [json.loads(x)["request_id"] for x in only_claude.stdout.splitlines()] == ["hook-1"]
    await sql(database_url, "INSERT INTO raw_conversations (user_id, request_id, messages, replay_of) "
                            "SELECT 'cli', 'replayed', messages, id FROM raw_conversations WHERE request_id = 'hook-1'")
    replays = run_cli(["conversations", "export", "--replays", "only"], cli_cwd, database_url)
    assert [json.loads(x)["request_id"] for x in replays.stdout.splitlines()] == ["replayed"]
    originals = run_cli(["conversations", "export", "--replays", "exclude"], cli_cwd, database_url)
    assert [json.loads(x)["request_id"] for x in originals.stdout.splitlines()] == ["old-1", "hook-1"]
    wrong = run_cli(["conversations", "export", "--replays", "some"], cli_cwd, database_url)
    assert wrong.returncode == 1 and '`replays` must be "include"' in wrong.stderr
    await sql(database_url, "DELETE FROM raw_conversations WHERE request_id = 'replayed'")

    purged = run_cli(["conversations", "purge", "--older-than", "30"], cli_cwd, database_url)
    assert "Deleted 1 exchange(s)" in purged.stdout
    remaining = await sql(database_url, "SELECT request_id FROM raw_conversations ORDER BY id")
    assert [r["request_id"] for r in remaining] == ["hook-1", "other-user"]


async def test_retention_purges_at_start_up(database_url: str, cli_cwd: Path) -> None:
    assert run_cli(["db", "upgrade"], cli_cwd, database_url).returncode == 0
    await sql(
        database_url,
        "INSERT INTO raw_conversations (created_at, request_id, user_id, messages) VALUES "
        "(now() - interval '10 days', 'old', 'cli', '[]'), (now(), 'new', 'cli', '[]')",
    )
    run_cli(["conversations", "export"], cli_cwd, database_url, CONVERSATION_RETENTION_DAYS="7")
    remaining = await sql(database_url, "SELECT request_id FROM raw_conversations")
    assert [r["request_id"] for r in remaining] == ["new"]
