"""Long memories (public rule files reach ~60 KB): stored whole, found by any word, embedded from
their start so that an embeddings API's input limit never turns them into failures.

The embedder is the real `openai` provider talking to the tests' own loopback server, which
refuses an input longer than its context length with OpenAI's 400, as the real API does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_server.db.vectors import MEMORY_EMBED_CHARS
from mcp_server.schemas import MAX_QUERY_CHARS
from mcp_server.server import create_server
from mcp_server.services.reembed import reembed as run_reembed
from mcp_server.settings import Settings
from tests.fake_embeddings_api import FakeEmbeddingsAPI, Reply, running_api
from tests.helpers import call, call_error, make_settings

pytestmark = pytest.mark.anyio
DIM = 16
# The fake API's context length: more than what a memory's vector is made from, less than a rule file.
API_LIMIT = MEMORY_EMBED_CHARS + 500


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
    with running_api(DIM, max_input_chars=API_LIMIT) as api:
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
            status = await call(client, "server_status")
            assert status["counts"]["memories_awaiting_embedding"] == 0
            assert status["embedder"]["state"] == "ready"  # no failure was counted against it
        assert api.received and all(len(text) <= MEMORY_EMBED_CHARS
                                    for request in api.received for text in request.body["input"])


async def test_a_long_memory_stored_during_an_outage_is_embedded_later_from_its_start(
    database_url: str, tmp_path: Path
) -> None:
    with running_api(DIM, max_input_chars=API_LIMIT) as api:
        settings = api_settings(database_url, tmp_path, api)
        api.reply(*[Reply(status=503, body={"error": {"message": "overloaded"}})] * 10)
        async with Client(create_server(settings)) as client:
            stored = await call(client, "remember", {"content": rule_file("billing", "tombstone", 40_000)})
            assert stored["embedded"] is False
        api.replies.clear()
        report = await run_reembed(settings, lambda total: lambda n: None)
        assert report.embedded == 1
        backfill = api.received[-1].body["input"]
        assert backfill == [rule_file("billing", "tombstone", 40_000)[:MEMORY_EMBED_CHARS]]


async def test_a_memory_may_be_as_long_as_a_pattern_but_a_query_is_bounded(settings: Settings) -> None:
    async with Client(create_server(settings)) as client:
        stored = await call(client, "remember", {"content": rule_file("search", "sentinel", 90_000)})
        assert stored["created"] is True
        too_long = "retry " * (MAX_QUERY_CHARS // 6 + 1)
        for tool in ("recall", "find_patterns"):
            message = await call_error(client, tool, {"query": too_long})
            assert f"`query` is {len(too_long.strip())} characters; the limit is {MAX_QUERY_CHARS}" in message
        longest = too_long[: MAX_QUERY_CHARS - len(" sentinel")] + " sentinel"
        found = await call(client, "recall", {"query": longest, "mode": "keywords"})
        assert [r["id"] for r in found["results"]] == [stored["id"]]
