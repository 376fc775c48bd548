"""Long memories (public rule files reach ~30,000 characters): stored whole, found by any word,
and embedded, like long queries, from their start, so that an embeddings API's input limit never
turns them into failures.

The embedder is the real `openai` provider talking to the tests' own loopback server, which
refuses an input longer than its context length with OpenAI's 400, as the real API does
(counting a token per UTF-8 byte: the most a byte-level tokenizer makes of a text).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_server.db.vectors import EMBED_INPUT_BYTES
from mcp_server.schemas import MAX_QUERY_CHARS
from mcp_server.server import create_server
from mcp_server.services.reembed import reembed as run_reembed
from mcp_server.settings import Settings
from tests.fake_embeddings_api import FakeEmbeddingsAPI, Reply, running_api
from tests.helpers import call, call_error, make_settings, sql

pytestmark = pytest.mark.anyio
DIM = 16
# The fake API's context length: more than an embedder is given, less than a long rule file.
API_LIMIT = EMBED_INPUT_BYTES + 500


def api_settings(database_url: str, tmp_path: Path, api: FakeEmbeddingsAPI) -> Settings:
    return make_settings(database_url, tmp_path, embedding_provider="openai", embedding_model="fake-embed",
                         embedding_dim=DIM, embedding_api_base=api.base_url, embedding_max_retries=0,
                         embedding_timeout_s=2.0)


def rule_file(topic: str, closing_word: str, chars: int) -> str:
    """A long rule file about `topic` whose only mention of `closing_word` is in its last section."""
    section = (f"## {topic} guideline {{n}}\n- Keep {topic} handlers small, typed and covered by tests; "
               f"log each retry of rule {{n}} with its cause.\n")
    text, n = "", 0
    while len(text) < chars - 200:
        text += section.format(n=n)
        n += 1
    return text + f"## Last section\n- Before a release, run the {closing_word} check.\n"


async def test_a_rule_file_longer_than_the_apis_input_is_stored_embedded_and_found(
    database_url: str, tmp_path: Path
) -> None:
    with running_api(DIM, context_tokens=API_LIMIT) as api:
        settings = api_settings(database_url, tmp_path, api)
        long_rule = rule_file("payments", "quarantine", 30_000)
        async with Client(create_server(settings)) as client:
            stored = await call(client, "remember", {"content": long_rule, "source": "payments.mdc"})
            assert stored["created"] is True and stored["embedded"] is True
            others = [await call(client, "remember", {"content": f"Short note {i} on deployment windows."})
                      for i in range(3)]
            assert all(o["embedded"] for o in others)

            # A word of its last section finds it (the whole text is indexed), and so does its meaning.
            by_word = await call(client, "recall", {"query": "quarantine check", "mode": "keywords"})
            assert [r["id"] for r in by_word["results"]] == [stored["id"]]
            by_meaning = await call(client, "recall", {"query": long_rule[:300], "mode": "vector", "limit": 1})
            assert [r["id"] for r in by_meaning["results"]] == [stored["id"]]
            whole = await call(client, "get_memory", {"id": stored["id"]})
            assert whole["content"] == long_rule.strip()

            # An edit re-embeds it from its start too.
            edited = long_rule.replace("quarantine", "canary")
            updated = await call(client, "update_memory", {"id": stored["id"], "content": edited})
            assert updated["content"] == edited.strip()

            # Text of three bytes a character (a Chinese style guide) is cut by bytes, not characters,
            # and a long query (a pasted file) is embedded from its start as well.
            chinese = "提交前运行类型检查与单元测试并记录每次重试的原因" * 640  # 15,360 characters, 46,080 bytes
            wide = await call(client, "remember", {"content": chinese})
            assert wide["embedded"] is True
            asked = await call(client, "recall", {"query": long_rule[:15_000], "limit": 1})
            assert asked["mode"] == "hybrid" and [r["id"] for r in asked["results"]] == [stored["id"]]
            status = await call(client, "server_status")
            assert status["counts"]["memories_awaiting_embedding"] == 0
            assert status["embedder"]["state"] == "ready"  # no failure was counted against it
        sent = [text for request in api.received for text in request.body["input"]]
        assert len(sent) == 8 and all(len(text.encode()) <= EMBED_INPUT_BYTES for text in sent)
        assert chinese.startswith(sent[6]) and len(sent[6]) == EMBED_INPUT_BYTES // 3  # whole characters
        assert sent[7] == long_rule[:EMBED_INPUT_BYTES]  # the long query, cut too


async def test_a_long_memory_stored_during_an_outage_is_embedded_later_from_its_start(
    database_url: str, tmp_path: Path
) -> None:
    with running_api(DIM, context_tokens=API_LIMIT) as api:
        settings = api_settings(database_url, tmp_path, api)
        api.reply(*[Reply(status=503, body={"error": {"message": "overloaded"}})] * 10)
        async with Client(create_server(settings)) as client:
            stored = await call(client, "remember", {"content": rule_file("billing", "tombstone", 40_000)})
            assert stored["embedded"] is False
        api.replies.clear()
        report = await run_reembed(settings, lambda total: lambda n: None)
        assert report.embedded == 1
        backfill = api.received[-1].body["input"]
        assert backfill == [rule_file("billing", "tombstone", 40_000)[:EMBED_INPUT_BYTES]]  # (ASCII: a byte each)


async def test_a_memory_may_be_long_but_a_query_is_bounded(settings: Settings) -> None:
    async with Client(create_server(settings)) as client:
        stored = await call(client, "remember", {"content": rule_file("search", "sentinel", 45_000)})
        assert stored["created"] is True
        too_long = "retry " * (MAX_QUERY_CHARS // 6 + 1)
        for tool in ("recall", "find_patterns"):
            message = await call_error(client, tool, {"query": too_long})
            assert f"`query` is {len(too_long.strip())} characters; the limit is {MAX_QUERY_CHARS}" in message
        longest = too_long[: MAX_QUERY_CHARS - len(" sentinel")] + " sentinel"
        found = await call(client, "recall", {"query": longest, "mode": "keywords"})
        assert [r["id"] for r in found["results"]] == [stored["id"]]


async def test_an_edit_made_from_a_shortened_text_is_refused_and_the_memory_kept_whole(database_url: str,
                                                                                      tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, max_response_chars=5_000)
    async with Client(create_server(settings)) as client:
        whole = rule_file("auth", "rotation", 12_000)
        stored = await call(client, "remember", {"content": whole})
        shown = (await call(client, "get_memory", {"id": stored["id"]}))["content"]
        assert len(shown) < len(whole) and "…[truncated" in shown  # what a model was shown of it
        message = await call_error(client, "update_memory", {"id": stored["id"], "content": shown + "\n- New rule."})
        assert "shortened" in message and "memories export" in message
        hook_shown = "- Rotate keys monthly. …[shortened: 12,000 characters in all, HOOK_CONTEXT_CHARS=4,000]"
        assert "shortened" in await call_error(client, "update_memory", {"id": stored["id"], "content": hook_shown})
        await call(client, "update_memory", {"id": stored["id"], "source": "auth.mdc"})  # other fields: fine
        # A memory that quotes a mark itself can still be edited with it.
        quoting = "Recall marks a cut text with …[truncated: N more characters]; get_memory reads it whole."
        quoted = await call(client, "remember", {"content": quoting})
        edited = await call(client, "update_memory", {"id": quoted["id"], "content": quoting + " Also the CLI."})
        assert edited["content"].endswith("Also the CLI.")
    rows = await sql(database_url, "SELECT content, source FROM memory_shards ORDER BY id")
    assert rows[0]["content"] == whole.strip() and rows[0]["source"] == "auth.mdc"
