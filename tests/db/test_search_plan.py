"""The search statement's vector ordering is the indexed expression, so PostgreSQL uses the index.

If the two drift apart (say, the index is built on `halfvec` and the search orders by `vector`),
results stay correct but every search becomes a full scan and sort: only the plan shows it.
"""

from __future__ import annotations

import asyncpg
import pytest
from pgvector.asyncpg import register_vector

from mcp_server.db import migrate
from mcp_server.db.engine import DatabaseTarget
from mcp_server.db.hybrid_query import HybridQuery, build_sql
from mcp_server.db.vectors import ALL_TABLES, build_index
from mcp_server.embeddings import HashingEmbedder
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio


async def plan_of(conn: asyncpg.Connection, query: HybridQuery) -> str:
    sql, values, _ = build_sql(query)
    rows = await conn.fetch(f"EXPLAIN {sql}", *values)
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize("ivfflat_lists", [None, 4])
async def test_vector_search_uses_the_vector_index(database_url: str, settings: Settings,
                                                   ivfflat_lists: int | None) -> None:
    await migrate.upgrade(DatabaseTarget(database_url, False), settings)
    conn = await asyncpg.connect(database_url)
    try:
        await register_vector(conn)
        for spec in ALL_TABLES:  # the index kind each setting builds (reembed does the same)
            await conn.execute(f"DROP INDEX IF EXISTS {spec.hnsw_index}")
            await build_index(conn, spec, ivfflat_lists)
        # Tiny tables: a sequential scan would win on cost; forbid it to see which index matches.
        await conn.execute("SET enable_seqscan = off")
        vector = HashingEmbedder(settings.embedding_dim).embed_sync(["retry with backoff"])[0]
        for spec in ALL_TABLES:
            index = spec.ivfflat_index if ivfflat_lists else spec.hnsw_index
            plain = HybridQuery(table=spec.table, columns="t.id", vector=vector, model="hashing-v2", limit=5)
            assert f"Index Scan using {index}" in await plan_of(conn, plain)
            hybrid = HybridQuery(table=spec.table, columns="t.id", vector=vector, model="hashing-v2",
                                 text="retry with backoff", limit=5)
            assert f"Index Scan using {index}" in await plan_of(conn, hybrid)
    finally:
        await conn.close()
