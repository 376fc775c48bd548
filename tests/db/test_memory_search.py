"""The bounded lexical side finds the same rows: asking GIN for the uncommon terms only, then
checking the whole query, matches exactly what the plain tsquery matches."""

from __future__ import annotations

import asyncpg
import pytest

from mcp_server.app_context import open_app
from mcp_server.db import memories as repo
from mcp_server.db.planner_stats import TableStats
from mcp_server.embeddings import HashingEmbedder
from mcp_server.embeddings.hashing import DEFAULT_MODEL
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio


async def test_rare_terms_pick_uncommon_lexemes_and_keep_the_matches(settings: Settings, database_url: str) -> None:
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        rows = [(f"deploy note {i}" + (" kafka" if i % 50 == 0 else "") + (" canary" if i % 7 == 0 else ""),)
                for i in range(600)]
        await conn.executemany(
            "INSERT INTO memory_shards (user_id, content, content_hash) VALUES ('tester', $1, md5($1))", rows
        )
        owner = await asyncpg.connect(database_url)  # ANALYZE needs the owner, not the app role
        await owner.execute("ANALYZE memory_shards")
        await owner.close()

        shares = TableStats("memory_shards")
        assert (await shares.shares(conn))["deploy"] == pytest.approx(1.0)
        assert await shares.rare_terms(conn, "deploy kafka") == "'kafka'"
        # Only common terms: the two least common ones go to the index.
        assert await shares.rare_terms(conn, "deploy note") == "'deploy' & 'note'"
        # Operators keep the user's query as is.
        assert await shares.rare_terms(conn, "deploy -kafka") is None
        assert await shares.rare_terms(conn, "the of") is None  # stop words only: no lexeme

        vector = HashingEmbedder(settings.embedding_dim).embed_sync(["deploy kafka canary"])[0]
        for text in ("deploy kafka", "deploy canary", "deploy kafka canary", "note deploy"):
            found = []
            for rare in (None, await shares.rare_terms(conn, text)):
                records, mode = await repo.search_once(conn, "tester", text=text, vector=vector,
                                                       model=DEFAULT_MODEL, limit=100, source=None, metadata=None,
                                                       min_score=None, rare_terms=rare)
                assert mode == "hybrid"
                found.append([r.id for r in records])
            assert found[0] == found[1], text


async def test_keyword_only_search_ranks_old_full_matches_above_many_newer_partial_ones(
    settings: Settings, database_url: str
) -> None:
    """Without a query vector (embedder down) the ranked candidates are bounded to the newest
    matches; rows matching every term must still come first however old they are."""
    async with open_app(settings, load_in_background=False) as app, app.database.connection() as conn:
        old = ["kafka canary deploy for payments", "kafka canary deploy for search", "canary deploy kafka brokers"]
        newer = [f"deploy note {i}" for i in range(1500)]  # newer rows sharing only the common word
        await conn.executemany(
            "INSERT INTO memory_shards (user_id, content, content_hash) VALUES ('tester', $1, md5($1))",
            [(text,) for text in old + newer],
        )
        owner = await asyncpg.connect(database_url)
        await owner.execute("ANALYZE memory_shards")
        await owner.close()

        text = "deploy kafka canary"
        rare = await TableStats("memory_shards").rare_terms(conn, text)
        assert rare == "'canari' & 'kafka'"  # stemmed
        records, mode = await repo.search_once(conn, "tester", text=text, vector=None, model=None, limit=10,
                                               source=None, metadata=None, min_score=None, rare_terms=rare)
        assert mode == "lexical"
        contents = [r.content for r in records]
        assert set(contents[:3]) == set(old)  # every term: first, though older than 1,500 partial matches
        assert contents[3:] == [f"deploy note {i}" for i in range(1499, 1492, -1)]  # then the newest partial ones
