"""recall's `mode`: "hybrid" (default: meaning and keywords), "vector" (meaning alone, an error when
the query cannot be embedded) and "keywords" (keywords alone, the query not embedded at all); and
recall's pages stay valid when memories are stored between them (the cursor pins the newest one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_server.app_context import open_app
from mcp_server.errors import InvalidInputError
from mcp_server.server import create_server
from tests.fake_embeddings_api import Reply, running_api
from tests.helpers import call, call_error, make_settings, sql

pytestmark = pytest.mark.anyio
DIM = 16


async def test_each_mode_ranks_by_its_own_side_and_min_score_keeps_its_meaning(database_url: str,
                                                                              tmp_path: Path) -> None:
    async with Client(create_server(make_settings(database_url, tmp_path))) as client:
        both = (await call(client, "remember", {"content": "Retries use exponential backoff with jitter."}))["id"]
        noted = await call(client, "remember", {"content": "Backoff jitter retries, noted before vectors."})
        unembedded = noted["id"]
        await sql(database_url, "UPDATE memory_shards SET embedding = NULL, embedding_model = NULL WHERE id = $1",
                  unembedded)
        unrelated = (await call(client, "remember", {"content": "Lunch is at noon."}))["id"]
        query = {"query": "retries backoff jitter", "limit": 10}

        hybrid = await call(client, "recall", query)  # the default, as before
        assert hybrid["mode"] == "hybrid"
        assert {r["id"] for r in hybrid["results"]} == {both, unembedded, unrelated}
        assert await call(client, "recall", query | {"mode": "hybrid"}) == hybrid

        vector = await call(client, "recall", query | {"mode": "vector"})
        assert vector["mode"] == "vector"
        # Every memory with a vector, and only those: no keyword side finds the one without.
        assert {r["id"] for r in vector["results"]} == {both, unrelated}
        for result in vector["results"]:
            assert result["found_by"] == "vector" and result["keyword_score"] is None
            assert result["score"] == result["similarity"] is not None
        similarities = [r["similarity"] for r in vector["results"]]
        assert similarities == sorted(similarities, reverse=True)
        floor = sum(similarities) / 2  # between the two: min_score is a floor on the similarity
        kept = await call(client, "recall", query | {"mode": "vector", "min_score": floor})
        assert [r["id"] for r in kept["results"]] == [vector["results"][0]["id"]]

        keywords = await call(client, "recall", query | {"mode": "keywords"})
        assert keywords["mode"] == "lexical"
        # Only memories sharing a word with the query; the one with a vector is scored by its words too.
        assert {r["id"] for r in keywords["results"]} == {both, unembedded}
        for result in keywords["results"]:
            assert result["found_by"] == "keywords" and result["similarity"] is None
            assert result["score"] == result["keyword_score"] == 1.0
        await call(client, "remember", {"content": "Retries are capped at five."})
        partial = await call(client, "recall", query | {"mode": "keywords"})
        assert sorted(r["keyword_score"] for r in partial["results"]) == [0.333333, 1.0, 1.0]  # (rounded to 6 places)
        strict = await call(client, "recall", query | {"mode": "keywords", "min_score": 0.5})
        assert {r["id"] for r in strict["results"]} == {both, unembedded}  # a floor on the share of words

        wrong = await call_error(client, "recall", query | {"mode": "semantic"})
        assert "mode" in wrong


async def test_the_service_refuses_an_unknown_mode_too(database_url: str, tmp_path: Path) -> None:
    async with open_app(make_settings(database_url, tmp_path), load_in_background=False) as app:
        with pytest.raises(InvalidInputError, match='must be one of hybrid, vector, keywords'):
            await app.memories.recall("retries", mode="semantic")  # type: ignore[arg-type]


async def test_keywords_mode_never_embeds_the_query_and_vector_mode_says_when_it_cannot(database_url: str,
                                                                                       tmp_path: Path) -> None:
    with running_api(DIM) as api:
        settings = make_settings(database_url, tmp_path, embedding_provider="openai", embedding_model="fake-embed",
                                 embedding_dim=DIM, embedding_api_base=api.base_url, embedding_max_retries=0,
                                 embedding_timeout_s=2.0)
        async with Client(create_server(settings)) as client:
            stored = await call(client, "remember", {"content": "ERR_QUOTA_417 comes from the billing API."})
            assert stored["embedded"] is True
            requests = len(api.received)
            found = await call(client, "recall", {"query": "ERR_QUOTA_417", "mode": "keywords"})
            assert found["mode"] == "lexical" and [r["id"] for r in found["results"]] == [stored["id"]]
            assert len(api.received) == requests  # the query was not embedded

            by_meaning = await call(client, "recall", {"query": "ERR_QUOTA_417", "mode": "vector"})
            assert by_meaning["mode"] == "vector" and len(api.received) == requests + 1

            api.reply(*[Reply(status=503, body={"error": {"message": "overloaded"}})] * 5)  # the API goes down
            error = await call_error(client, "recall", {"query": "ERR_QUOTA_417", "mode": "vector"})
            assert 'mode "vector"' in error and 'mode "keywords"' in error and "server_status" in error
            fallback = await call(client, "recall", {"query": "ERR_QUOTA_417"})  # hybrid falls back, as before
            assert fallback["mode"] == "lexical" and [r["id"] for r in fallback["results"]] == [stored["id"]]


def text_of(i: int) -> str:
    """A 1,500-character memory about the query's subject (so that the results come in pages)."""
    words = f"memory {i} deployment retries and caching notes " + " ".join(f"w{i}x{n}" for n in range(400))
    return words[:1_500].strip()


async def test_pages_go_on_when_a_memory_is_stored_between_them(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, max_response_chars=4_000)
    async with Client(create_server(settings)) as client:
        for i in range(30):
            await call(client, "remember", {"content": text_of(i)})
        arguments = {"query": "deployment retries caching", "limit": 30}

        async def every_page(store_between: bool) -> list[int]:
            seen: list[int] = []
            cursor = None
            while True:
                page = await call(client, "recall", arguments | ({"cursor": cursor} if cursor else {}))
                assert page["results"]
                seen += [r["id"] for r in page["results"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    return seen
                if store_between:  # as hooks capture memories while a session goes on
                    query_words = f"Deployment retries caching: deployment retries caching {len(seen)}."
                    await call(client, "remember", {"content": query_words})

        ranking = await every_page(store_between=False)
        assert len(ranking) == 30 == len(set(ranking))
        paged = await every_page(store_between=True)
        assert paged == ranking  # no repeat, no loss, no error, in the same order
        newer = await call(client, "recall", arguments)  # a new call sees the memories stored meanwhile
        assert newer["results"][0]["id"] not in ranking

        first = await call(client, "recall", arguments)
        other = await call_error(client, "recall", arguments | {"mode": "keywords", "cursor": first["next_cursor"]})
        assert "other arguments" in other
