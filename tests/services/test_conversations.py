"""ConversationService on the real database: provenance taken by the exchange that is logged (and
kept when logging fails), the retention job, and the JSONL export."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mcp_server.app_context import open_app
from mcp_server.errors import InvalidInputError
from mcp_server.settings import Settings
from tests.helpers import make_settings, sql

pytestmark = pytest.mark.anyio
PROMPT = [{"role": "user", "content": "What did we decide about retries?"}]


async def test_provenance_goes_to_the_next_logged_exchange_only(settings: Settings) -> None:
    async with open_app(settings) as app:
        memory = await app.memories.remember("Retries use exponential backoff with jitter.")
        pattern = await app.patterns.add("Wrap HTTP calls in the retry helper.", title="Retries",
                                         target_contexts=["api/**"])
        await app.memories.recall("retries", session="s1")
        await app.patterns.find_page(file_path="api/client.py", session="s1")
        await app.memories.recall("retries", session="s2")  # another session's context

        with pytest.raises(InvalidInputError):
            await app.conversations.log([], "no prompt", session="s1")  # not logged: provenance kept
        first = await app.conversations.get((await app.conversations.log(PROMPT, "Backoff.", session="s1")).id)
        second = await app.conversations.get((await app.conversations.log(PROMPT, "Again.", session="s1")).id)

    assert (first.memory_ids, first.pattern_ids) == ([memory.id], [pattern.id])
    assert (second.memory_ids, second.pattern_ids) == ([], [])


async def test_retention_purges_only_older_exchanges(database_url: str, tmp_path: Path) -> None:
    async with open_app(make_settings(database_url, tmp_path), load_in_background=False) as app:
        old = await app.conversations.log(PROMPT, "old answer")
        new = await app.conversations.log(PROMPT, "new answer")
    await sql(database_url, "UPDATE raw_conversations SET created_at = now() - interval '40 days' WHERE id = $1",
              old.id)
    async with open_app(make_settings(database_url, tmp_path, conversation_retention_days=30),
                        load_in_background=False):
        pass  # the start-up job runs when the application opens
    rows = await sql(database_url, "SELECT id FROM raw_conversations")
    assert [r["id"] for r in rows] == [new.id]


async def test_export_writes_redacted_jsonl_oldest_first(settings: Settings) -> None:
    secret = "ghp_" + "a1B2" * 9
    async with open_app(settings, load_in_background=False) as app:
        await app.conversations.log(PROMPT, f"use {secret}", model="m1", request_id="r1")
        await app.conversations.log(PROMPT, "second", model="m2", request_id="r2")
        everything, only_m2 = io.StringIO(), io.StringIO()
        assert await app.conversations.export_jsonl(everything) == 2
        assert await app.conversations.export_jsonl(only_m2, model="m2") == 1
    lines = [json.loads(line) for line in everything.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["r1", "r2"]
    assert lines[0]["response"] == "use [REDACTED:github_token]" and secret not in everything.getvalue()
    assert json.loads(only_m2.getvalue())["request_id"] == "r2"
