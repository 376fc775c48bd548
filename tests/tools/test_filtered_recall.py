"""Recall returns `limit` results from 20k rows when HNSW has to skip rows: a filter matching ~1%
of them (iterative scans), or another user's rows written after the statistics were taken."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest
from mcp import Client
from pgvector.asyncpg import register_vector

from mcp_server.db import memories as repo
from mcp_server.db.engine import register_codecs
from mcp_server.db.planner_stats import PLAIN_SCAN, TableStats, set_hnsw_scan
from mcp_server.db.vectors import MEMORIES, build_index
from mcp_server.embeddings import HashingEmbedder
from mcp_server.embeddings.hashing import DEFAULT_MODEL
from mcp_server.settings import Settings
from tests.helpers import call, make_settings

pytestmark = pytest.mark.anyio
ROWS = 20_000
WORDS = ["cache", "deploy", "schema", "retry", "queue", "index", "token", "shard", "build", "trace"]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, embedding_dim=64)  # smaller vectors: a faster index build


async def test_filtered_recall_returns_limit_results(client: Client, settings: Settings, database_url: str) -> None:
    await call(client, "server_status")  # the schema exists now
    texts = [f"note {i}: {WORDS[i % 10]} {WORDS[(i // 10) % 10]} {WORDS[(i // 100) % 10]} step {i}"
             for i in range(ROWS)]
    vectors = HashingEmbedder(settings.embedding_dim).embed_sync(texts)
    conn = await asyncpg.connect(database_url)
    await register_vector(conn)
    # Bulk load as `memories import` would, then build the HNSW graph once (much faster than per row).
    await conn.execute(f"DROP INDEX {MEMORIES.hnsw_index}")
    await conn.copy_records_to_table(
        "memory_shards",
        records=[("tester", t, f"h{i}", json.dumps({"group": i % 100}), v, DEFAULT_MODEL)
                 for i, (t, v) in enumerate(zip(texts, vectors, strict=True))],
        columns=["user_id", "content", "content_hash", "metadata", "embedding", "embedding_model"],
    )
    await conn.execute("SET maintenance_work_mem = '256MB'")
    await build_index(conn, MEMORIES, ivfflat_lists=None)
    await conn.execute("ANALYZE memory_shards")
    await conn.close()

    # A query sharing no keyword with the corpus: the vector side alone has to fill the page.
    found = await call(client, "recall", {"query": "zebra quasar", "limit": 10, "metadata": {"group": 42}})
    assert len(found["results"]) == 10
    assert all(r["metadata"]["group"] == 42 for r in found["results"])

    found = await call(client, "recall", {"query": "deploy cache", "limit": 25, "metadata": {"group": 7}})
    assert len(found["results"]) == 25 and found["mode"] == "hybrid"
    assert all(r["metadata"]["group"] == 7 for r in found["results"])


async def test_recall_searches_again_when_the_statistics_are_older_than_the_rows(
    client: Client, settings: Settings, database_url: str
) -> None:
    """The statistics were taken when tester owned every row; since then another user wrote 95%
    of the table. Recall trusts them and scans plainly, comes back short, and must search again
    with iterative scans to return `limit` results."""
    await call(client, "server_status")
    mine, others = 1_000, 19_000
    texts = [f"note {i}: {WORDS[i % 10]} {WORDS[(i // 10) % 10]} step {i}" for i in range(mine + others)]
    vectors = HashingEmbedder(settings.embedding_dim).embed_sync(texts)
    rows = [("tester" if i < mine else "someone-else", t, f"h{i}", v, DEFAULT_MODEL)
            for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]
    columns = ["user_id", "content", "content_hash", "embedding", "embedding_model"]
    conn = await asyncpg.connect(database_url)
    await register_codecs(conn)
    await conn.execute("ALTER TABLE memory_shards SET (autovacuum_enabled = false)")  # keep the old statistics
    await conn.execute(f"DROP INDEX {MEMORIES.hnsw_index}")
    await conn.copy_records_to_table("memory_shards", records=rows[:mine], columns=columns)
    await conn.execute("ANALYZE memory_shards")
    await conn.copy_records_to_table("memory_shards", records=rows[mine:], columns=columns)
    await conn.execute("SET maintenance_work_mem = '256MB'")
    await build_index(conn, MEMORIES, ivfflat_lists=None)

    # What recall will decide, and that a plain scan really comes back short here.
    await conn.execute("SET ROLE aletheia_app; SET aletheia.user_id = 'tester'")
    stats = TableStats("memory_shards")
    assert await stats.hnsw_scan_mode(conn, acting_user="tester", model=DEFAULT_MODEL, candidates=40,
                                      ef_search=settings.hnsw_ef_search, filtered=False) == PLAIN_SCAN
    query = "zebra quasar"  # no keyword in common with the corpus: the vector side has to fill the page
    await set_hnsw_scan(conn, PLAIN_SCAN)
    records, _ = await repo.search_once(conn, "tester", text=query, vector=HashingEmbedder(settings.embedding_dim)
                                        .embed_sync([query])[0], model=DEFAULT_MODEL, limit=10, source=None,
                                        metadata=None, min_score=None)
    assert len(records) < 10
    await conn.close()

    found = await call(client, "recall", {"query": query, "limit": 10})
    assert len(found["results"]) == 10
    assert all(r["content"].startswith("note ") and int(r["content"].split()[1].rstrip(":")) < mine
               for r in found["results"])
