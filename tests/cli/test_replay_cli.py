"""`aletheia-mcp conversations replay` in a subprocess, against a loopback fake upstream: the dry
run sends nothing, a replay prints its comparison and summary and stores the replay, and bad
input is one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server.app_context import open_app
from mcp_server.schemas import CapturedCall
from tests.helpers import clean_env, make_settings, sql
from tests.replay_upstream import FakeUpstream, running_upstream

pytestmark = pytest.mark.anyio
OPENAI_KEY = "sk-replayer-cli-0123456789abcdef"
SECRET = "ghp_" + "a1B2" * 9


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with running_upstream() as fake:
        yield fake


async def replay_cli(args: list[str], cwd: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = clean_env(DATABASE_URL=url, EMBEDDING_PROVIDER="hashing", ALETHEIA_USER_ID="cli", COLUMNS="200")
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):  # only the keys a test gives
        environment.pop(key, None)
    environment.update(env)
    return await anyio.to_thread.run_sync(lambda: subprocess.run(
        [sys.executable, "-m", "mcp_server", "conversations", "replay", *args], cwd=cwd, env=environment,
        capture_output=True, text=True, timeout=120))


async def seed(database_url: str, tmp_path: Path) -> tuple[int, int, int]:
    """A gateway chat call (its prompt held a secret), and two logged by log_exchange: one replayable."""
    settings = make_settings(database_url, tmp_path, user_id="cli")
    request: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"deploy with {SECRET}"}]}
    async with open_app(settings, load_in_background=False) as app:
        gateway = await app.conversations.log_captured(CapturedCall(
            request_id=uuid.uuid4().hex, provider="openai", endpoint="/v1/chat/completions", model="gpt-4o",
            request=request, response={"choices": [{"message": {"role": "assistant", "content": "pong"}}],
                                       "usage": {"prompt_tokens": 30, "completion_tokens": 2}},
            status_code=200, latency_ms=1200, ttft_ms=None, usage={"prompt_tokens": 30, "completion_tokens": 2},
            outcome="completed", stream=False, project=None, created_at=datetime.now(UTC)))
        hook = await app.conversations.log([{"role": "user", "content": "hello"}], "hi!", model="gpt-4o")
        blocks = await app.conversations.log(
            [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}]}],
            "a cat", model="gpt-4o")
    return gateway.id, hook.id, blocks.id


async def test_dry_run_lists_what_would_be_sent_and_sends_nothing(
        database_url: str, cli_cwd: Path, tmp_path: Path, upstream: FakeUpstream) -> None:
    gateway, hook, blocks = await seed(database_url, tmp_path)
    result = await replay_cli(["--from-model", "gpt-4o", "--upstream", upstream.url, "--model", "gpt-new",
                               "--dry-run"], cli_cwd, database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Dry run: 2 of 3 exchange(s) would be sent to {upstream.url} as model gpt-new; nothing is sent.",
        f"#{gateway}  /v1/chat/completions  gpt-4o -> gpt-new  1 message(s)",
        f"#{hook}  /v1/chat/completions  gpt-4o -> gpt-new  1 message(s)",
        f"#{blocks}  not replayable: messages[0] holds a 'image' block, which chat completions do not take (it "
        "was logged without its API)",
    ]
    assert f"#{gateway}) had secrets redacted" in result.stderr
    assert "[REDACTED:...] placeholders are sent as they are" in result.stderr
    assert upstream.received == []


async def test_replay_prints_a_comparison_per_call_and_a_summary_and_stores_the_replays(
        database_url: str, cli_cwd: Path, tmp_path: Path, upstream: FakeUpstream) -> None:
    gateway, hook, blocks = await seed(database_url, tmp_path)
    upstream.answers["hello"] = "hello to you"
    result = await replay_cli(["--id", str(gateway), "--id", str(hook), "--id", str(blocks), "--upstream",
                               upstream.url, "--model", "gpt-new"], cli_cwd, database_url, OPENAI_API_KEY=OPENAI_KEY)
    assert result.returncode == 0, result.stderr
    replays = await sql(database_url, "SELECT id, replay_of, model FROM raw_conversations WHERE replay_of IS NOT "
                                      "NULL ORDER BY id")
    assert [(r["replay_of"], r["model"]) for r in replays] == [(gateway, "gpt-new"), (hook, "gpt-new")]
    first, second = (r["id"] for r in replays)
    lines = result.stdout.splitlines()
    assert lines[0] == (f"#{blocks}  not replayable: messages[0] holds a 'image' block, which chat completions do "
                        "not take (it was logged without its API)")
    assert lines[1] == f"Replaying 2 exchange(s) to {upstream.url} as model gpt-new:"
    assert lines[2].startswith(f"#{gateway} -> #{first}  /v1/chat/completions  same text  latency 1,200 ms -> ")
    sent_tokens = len(json.dumps(upstream.received[0].body["messages"])) // 4  # as the fake counts them
    assert lines[2].endswith(f"tokens in/out 30/2 -> {sent_tokens}/4")
    assert lines[3].startswith(f"#{hook} -> #{second}  /v1/chat/completions  different text  latency ? -> ")
    hello_tokens = len(json.dumps(upstream.received[1].body["messages"])) // 4
    assert lines[3].endswith(f"tokens in/out ? -> {hello_tokens}/12")  # no usage was logged for the original
    assert lines[4].startswith("Summary: 2 replay(s) stored (1 same text, 1 different, 0 failed); 1 not "
                               "replayable. Latency p50 1,200 ms -> ")
    assert lines[4].endswith(f"tokens in/out 30/2 -> {sent_tokens}/4.")
    assert all(r.headers["authorization"] == f"Bearer {OPENAI_KEY}" for r in upstream.received)
    assert "[REDACTED:github_token]" in upstream.received[0].body["messages"][0]["content"]
    assert "placeholders are sent as they are" in result.stderr
    stored = await sql(database_url, "SELECT r::text AS row FROM raw_conversations r")
    assert not any(OPENAI_KEY in record["row"] for record in stored)


async def test_a_missing_key_is_noted_and_the_call_sent_without_one(
        database_url: str, cli_cwd: Path, tmp_path: Path, upstream: FakeUpstream) -> None:
    _, hook, _ = await seed(database_url, tmp_path)
    result = await replay_cli(["--id", str(hook), "--upstream", upstream.url, "--model", "local"], cli_cwd,
                              database_url)
    assert result.returncode == 0, result.stderr
    assert "OPENAI_API_KEY is not set: its calls are sent without Authorization" in result.stderr
    assert "authorization" not in upstream.received[0].headers


@pytest.mark.parametrize(("args", "said"), [
    (["--upstream", "http://127.0.0.1:9", "--model", "m"], "Say which exchanges to replay"),
    (["--limit", "1", "--upstream", "api.openai.com", "--model", "m"], "is not an http(s) URL"),
    (["--since", "last week", "--upstream", "http://127.0.0.1:9", "--model", "m"], "ISO-8601"),
    (["--id", "424242", "--upstream", "http://127.0.0.1:9", "--model", "m"], "No logged exchange with id 424242"),
])
async def test_bad_input_is_one_clear_line(database_url: str, cli_cwd: Path, args: list[str], said: str) -> None:
    result = await replay_cli(args, cli_cwd, database_url)
    assert result.returncode == 1 and said in result.stderr and "Traceback" not in result.stderr
