"""Vectors are stored only for the text they were computed from: a row edited while its vector was
being computed keeps waiting for one (and gets it on the next pass)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server.app_context import open_app
from mcp_server.db import vectors
from mcp_server.db.vectors import MEMORIES, PATTERNS, pattern_embedding_text
from mcp_server.embeddings import HashingEmbedder
from mcp_server.settings import Settings
from tests.helpers import make_settings, sql

pytestmark = pytest.mark.anyio


async def test_a_vector_for_text_edited_meanwhile_is_not_stored(database_url: str, tmp_path: Path) -> None:
    # The application's own embedder never loads (and writes wait for it 0.1 s at most): the
    # rows wait for vectors, which this test computes and stores as the backfill would.
    settings = make_settings(database_url, tmp_path, embedding_timeout_s=0.1)
    embedder = HashingEmbedder(settings.embedding_dim)
    async with open_app(settings, load_in_background=False) as app:
        imported = await app.memories.import_jsonl(['{"content": "first text"}', '{"content": "other text"}'])
        assert imported.inserted == 2
        async with app.database.connection() as conn:
            rows = await vectors.waiting(conn, MEMORIES, embedder.model, 0, 10, include_other_models=False)
            computed = embedder.embed_sync([r.text for r in rows])
            edited = await app.memories.update(rows[0].id, content="edited text")  # while the vectors were made
            assert edited.embedded is False
            await vectors.store(conn, MEMORIES, embedder.model, list(zip(rows, computed, strict=True)))
    stored = await sql(database_url, "SELECT content, embedding_model FROM memory_shards ORDER BY id")
    assert [(r["content"], r["embedding_model"]) for r in stored] == [("edited text", None),
                                                                      ("other text", embedder.model)]


async def test_patterns_are_embedded_from_title_description_and_leading_content(
    settings: Settings, database_url: str
) -> None:
    async with open_app(settings) as app:
        created = await app.patterns.add("x" * 5000, title="Long rule", metadata={"description": "Why"})
        async with app.database.connection() as conn:
            await conn.execute("UPDATE eng_patterns SET embedding = NULL, embedding_model = NULL")
            [row] = await vectors.waiting(conn, PATTERNS, "m", 0, 10, include_other_models=False)
    assert row.id == created.id
    assert row.text == pattern_embedding_text("Long rule", "x" * 5000, {"description": "Why"})
    assert row.text == "Long rule\n\nWhy\n\n" + "x" * vectors.PATTERN_EMBED_CHARS
