"""recall and search_conversations never drop a result to fit MAX_RESPONSE_CHARS: long texts are
shortened first (marked, with the id to read them whole), then the rest comes in pages; each recall
result says why it was found, and `min_score` means the same in every mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_server.app_context import open_app
from mcp_server.server import create_server
from tests.helpers import call, call_error, make_settings, sql

pytestmark = pytest.mark.anyio


def size(result: dict[str, Any]) -> int:
    return len(json.dumps(result, ensure_ascii=False, separators=(",", ":")))


def long_text(i: int, chars: int = 5_200) -> str:
    words = f"memory {i} deployment retries and caching notes " + " ".join(f"w{i}x{n}" for n in range(2_000))
    return words[:chars].strip()


async def test_ten_long_memories_come_back_all_at_10000_chars(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, max_response_chars=10_000)
    async with Client(create_server(settings)) as client:
        texts = {(await call(client, "remember", {"content": long_text(i)}))["id"]: long_text(i) for i in range(10)}
        recalled = await call(client, "recall", {"query": "deployment retries caching", "limit": 10})
        assert size(recalled) <= 10_000
        assert sorted(r["id"] for r in recalled["results"]) == sorted(texts)  # all ten, none dropped
        assert recalled["next_cursor"] is None
        for result in recalled["results"]:
            whole = texts[result["id"]]
            assert result["truncated"] is True and result["content_chars"] == len(whole)
            shown = result["content"].split("…[truncated")[0]
            assert len(shown) >= 200 and whole.startswith(shown)
            assert f"get_memory(id={result['id']})" in result["content"]
        read = await call(client, "get_memory", {"id": recalled["results"][0]["id"]})
        assert read["content"] == texts[read["id"]]  # the whole text, by the id the result gives


async def test_results_that_do_not_fit_even_shortened_come_in_pages(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, max_response_chars=10_000)
    async with Client(create_server(settings)) as client:
        for i in range(60):
            await call(client, "remember", {"content": long_text(i, 1_500)})
        arguments = {"query": "deployment retries caching", "limit": 60}
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            page = await call(client, "recall", arguments | ({"cursor": cursor} if cursor else {}))
            assert size(page) <= 10_000 and page["results"]
            seen += [r["id"] for r in page["results"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages > 1 and len(seen) == 60 == len(set(seen))
        # in the order of the whole ranking, nothing skipped or repeated
        async with open_app(settings, load_in_background=False) as app:
            assert await app.embedder.ensure_loaded()
            ranked = await app.memories.recall(arguments["query"], limit=60)
        assert ranked.mode == "hybrid", ranked.mode
        assert seen == [r.id for r in ranked.results]

        first = await call(client, "recall", arguments)
        other = await call_error(client, "recall", arguments | {"limit": 59, "cursor": first["next_cursor"]})
        assert "other arguments" in other
        assert "not one recall returned" in await call_error(client, "recall", arguments | {"cursor": "nonsense"})


async def test_each_result_says_why_it_was_found(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path)
    async with Client(create_server(settings)) as client:
        both = await call(client, "remember", {"content": "Retries use exponential backoff with jitter."})
        keywords = await call(client, "remember", {"content": "Backoff jitter retries, noted before vectors."})
        await sql(database_url, "UPDATE memory_shards SET embedding = NULL, embedding_model = NULL WHERE id = $1",
                  keywords["id"])
        vector_only = await call(client, "remember", {"content": "Lunch is at noon."})
        found = {r["id"]: r for r in (await call(client, "recall", {"query": "retries backoff jitter",
                                                                     "limit": 10}))["results"]}
    assert found[both["id"]]["found_by"] == "both"
    assert found[both["id"]]["score"] == found[both["id"]]["similarity"] is not None
    assert found[keywords["id"]]["found_by"] == "keywords" and found[keywords["id"]]["similarity"] is None
    assert found[keywords["id"]]["keyword_score"] == 1.0 == found[keywords["id"]]["score"]
    assert found[vector_only["id"]]["found_by"] == "vector"
    assert found[vector_only["id"]]["keyword_score"] == 0.0


async def test_min_score_is_a_floor_in_keyword_mode_too(database_url: str, tmp_path: Path) -> None:
    # The openai provider at a closed port: every query vector fails, recall searches by keywords.
    down = make_settings(database_url, tmp_path, embedding_provider="openai", embedding_model="fake-embed",
                         embedding_dim=16, embedding_api_base="http://127.0.0.1:9/v1", embedding_max_retries=0,
                         embedding_timeout_s=2.0)
    async with Client(create_server(down)) as client:
        every = await call(client, "remember", {"content": "postgres vacuum schedule nightly"})
        half = await call(client, "remember", {"content": "postgres connection pooling"})
        query = {"query": "postgres vacuum schedule nightly"}
        loose = await call(client, "recall", query)
        assert loose["mode"] == "lexical"
        scores = {r["id"]: r["keyword_score"] for r in loose["results"]}
        assert scores == {every["id"]: 1.0, half["id"]: 0.25}
        assert all(r["found_by"] == "keywords" and r["score"] == r["keyword_score"] for r in loose["results"])
        strict = await call(client, "recall", query | {"min_score": 0.5})
    assert [r["id"] for r in strict["results"]] == [every["id"]]  # (ignored in this mode before)


async def test_search_conversations_pages_instead_of_dropping(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, max_response_chars=4_000)
    async with Client(create_server(settings)) as client:
        logged = [(await call(client, "log_exchange", {"messages": [{"role": "user", "content": f"question {i} " * 50}],
                                                       "response": f"answer {i} " * 50}))["id"] for i in range(30)]
        seen: list[int] = []
        cursor = None
        while True:
            page = await call(client, "search_conversations", {"limit": 30} | ({"cursor": cursor} if cursor else {}))
            assert size(page) <= 4_000 and page["items"]
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            # logged between two pages (as the gateway logs every call): the pages go on unshifted
            await call(client, "log_exchange", {"messages": [{"role": "user", "content": "later"}], "response": "x"})
        assert seen == sorted(logged, reverse=True)  # every one, newest first, none dropped
        first = await call(client, "search_conversations", {"limit": 30})
        assert "other arguments" in await call_error(client, "search_conversations",
                                                     {"limit": 29, "cursor": first["next_cursor"]})
