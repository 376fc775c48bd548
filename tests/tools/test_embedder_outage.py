"""Embedder outages lose nothing: stored without a vector, found by keywords, embedded later.

The embedder here is the real `openai` provider talking to a small local HTTP server of the
tests' own (the one remote service we cannot reach from here), made to fail and then recover.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client

from mcp_server.errors import EmbeddingUnavailableError
from mcp_server.server import create_server
from mcp_server.services.reembed import reembed as run_reembed
from mcp_server.settings import Settings
from tests.fake_embeddings_api import FakeEmbeddingsAPI, Reply, running_api
from tests.helpers import call, call_error, make_settings, sql

pytestmark = pytest.mark.anyio
DIM = 16


def api_settings(database_url: str, tmp_path: Path, api: FakeEmbeddingsAPI, **extra: object) -> Settings:
    values: dict[str, object] = {"embedding_provider": "openai", "embedding_model": "fake-embed", "embedding_dim": DIM,
                                 "embedding_api_base": api.base_url, "embedding_max_retries": 0,
                                 "embedding_timeout_s": 2.0}
    values.update(extra)
    return make_settings(database_url, tmp_path, **values)


def no_progress(total: int):  # type: ignore[no-untyped-def]
    return lambda n: None


async def test_outage_then_reembed_makes_memory_findable_by_vector(database_url: str, tmp_path: Path) -> None:
    with running_api(DIM) as api:
        settings = api_settings(database_url, tmp_path, api)
        api.reply(*[Reply(status=503, body={"error": {"message": "overloaded"}})] * 10)
        async with Client(create_server(settings)) as client:
            stored = await call(client, "remember", {"content": "Blue green deployment switches traffic."})
            assert stored["created"] is True and stored["embedded"] is False

            found = await call(client, "recall", {"query": "how does deployment switch traffic"})
            assert found["mode"] == "lexical"
            assert [r["id"] for r in found["results"]] == [stored["id"]]

            status = await call(client, "server_status")
            assert status["counts"]["memories_awaiting_embedding"] == 1
        rows = await sql(database_url, "SELECT embedding, embedding_model FROM memory_shards")
        assert rows[0]["embedding"] is None and rows[0]["embedding_model"] is None

        api.replies.clear()  # the API is back
        report = await run_reembed(settings, no_progress)
        assert report.embedded == 1

        async with Client(create_server(settings)) as client:
            status = await call(client, "server_status")
            assert status["counts"]["memories_awaiting_embedding"] == 0
            found = await call(client, "recall", {"query": "zzz unrelated words", "limit": 1})
            assert found["mode"] == "hybrid"  # the vector side finds it without a shared keyword
            assert [r["id"] for r in found["results"]] == [stored["id"]]
        rows = await sql(database_url, "SELECT embedding_model FROM memory_shards")
        assert rows[0]["embedding_model"] == "fake-embed"


async def test_server_embeds_waiting_rows_itself_once_ready(settings: Settings, database_url: str) -> None:
    async with Client(create_server(settings)) as client:
        await call(client, "remember", {"content": "first"})
    await sql(database_url, "INSERT INTO memory_shards (user_id, content, content_hash) VALUES "
                            "('tester', 'stored while the embedder was down', 'h1')")
    async with Client(create_server(settings)) as client:
        for _ in range(50):
            status = await call(client, "server_status")
            if status["counts"]["memories_awaiting_embedding"] == 0:
                break


            await anyio.sleep(0.1)
        assert status["counts"]["memories_awaiting_embedding"] == 0
    rows = await sql(database_url, "SELECT embedding_model FROM memory_shards WHERE content_hash = 'h1'")
    assert rows[0]["embedding_model"] == "hashing-v2"


@pytest.mark.parametrize("bad", ["zero", "nan", "short"])
async def test_invalid_vectors_from_the_provider_are_tool_errors(database_url: str, tmp_path: Path, bad: str) -> None:
    with running_api(DIM) as api:
        api.vector_hook = {
            "zero": lambda v, i: [0.0] * len(v),
            "nan": lambda v, i: [float("nan"), *v[1:]],
            "short": lambda v, i: v[:-1],
        }[bad]
        async with Client(create_server(api_settings(database_url, tmp_path, api))) as client:
            message = await call_error(client, "remember", {"content": "a perfectly fine memory"})
            assert "fake-embed" in message or "openai" in message
            message = await call_error(client, "recall", {"query": "fine memory"})
            assert await call(client, "server_status")  # still serving
    assert await sql(database_url, "SELECT id FROM memory_shards") == []


async def test_reembed_with_a_new_dimension_resizes_columns(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path)
    async with Client(create_server(settings)) as client:
        for i in range(30):
            await call(client, "remember", {"content": f"memory {i} about topic {i % 3}"})

    bigger = make_settings(database_url, tmp_path, embedding_dim=64)
    report = await run_reembed(bigger, no_progress)

    assert report.embedded == 30 and report.resized_from == 384 and report.dimension == 64
    dims = await sql(database_url, "SELECT atttypmod FROM pg_attribute WHERE attname = 'embedding' "
                                   "AND attrelid IN ('memory_shards'::regclass, 'eng_patterns'::regclass)")
    assert {r["atttypmod"] for r in dims} == {64}
    indexes = {r["indexname"] for r in await sql(database_url, "SELECT indexname FROM pg_indexes")}
    assert {"ix_memory_shards_embedding_hnsw", "ix_eng_patterns_embedding_hnsw"} <= indexes
    async with Client(create_server(bigger)) as client:
        found = await call(client, "recall", {"query": "memory 7 about topic 1"})
        assert found["mode"] == "hybrid" and found["results"][0]["content"] == "memory 7 about topic 1"


async def test_failed_dimension_change_keeps_the_old_vectors(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, embedding_batch_size=8)
    async with Client(create_server(settings)) as client:
        for i in range(20):
            await call(client, "remember", {"content": f"kept memory {i}"})
    before = await sql(database_url, "SELECT id, embedding, embedding_model FROM memory_shards ORDER BY id")

    with running_api(32) as api:
        api.reply(Reply(), *[Reply(status=500, body={"error": {"message": "boom"}})] * 20)  # fails on batch 2
        failing = api_settings(database_url, tmp_path, api, embedding_dim=32, embedding_batch_size=8)
        with pytest.raises(EmbeddingUnavailableError, match=r"500"):
            await run_reembed(failing, no_progress)

    after = await sql(database_url, "SELECT id, embedding, embedding_model FROM memory_shards ORDER BY id")
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
    dims = await sql(database_url, "SELECT atttypmod FROM pg_attribute WHERE attname = 'embedding' "
                                   "AND attrelid = 'memory_shards'::regclass")
    assert dims[0]["atttypmod"] == 384
