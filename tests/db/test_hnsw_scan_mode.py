"""Recall skips pgvector's iterative index scans only when the planner's statistics say a plain
scan yields enough eligible rows (db/planner_stats.py `TableStats.hnsw_scan_mode`, migration 0017)."""

from __future__ import annotations

import asyncpg
import pytest

from mcp_server.db import migrate
from mcp_server.db.engine import ITERATIVE_SCAN, DatabaseTarget, open_pool, restore_search_settings
from mcp_server.db.hybrid_query import vector_candidates
from mcp_server.db.planner_stats import PLAIN_SCAN, TableStats
from mcp_server.embeddings.hashing import DEFAULT_MODEL
from mcp_server.identity import acting_as
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio


async def owner_execute(database_url: str, sql: str) -> None:
    conn = await asyncpg.connect(database_url)  # the login role: writes for any user, may ANALYZE
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_scan_mode_follows_the_users_share_of_rows(database_url: str, settings: Settings) -> None:
    await migrate.upgrade(DatabaseTarget(database_url, False), settings)
    # 300 of alice's rows and 100 of bob's with vectors from the current model; 100 of alice's
    # from an older model.
    await owner_execute(database_url, f"""
        INSERT INTO memory_shards (user_id, content, content_hash, embedding_model)
        SELECT CASE WHEN i <= 400 THEN 'alice' ELSE 'bob' END, 'note ' || i, md5(i::text),
               CASE WHEN i <= 100 THEN 'old-model' ELSE '{DEFAULT_MODEL}' END
        FROM generate_series(1, 500) AS i""")
    pool = await open_pool(DatabaseTarget(database_url, False), settings, max_size=1)
    ef_search = 128  # (the rule, whatever the default)
    try:
        with acting_as("alice"):
            async with pool.acquire() as conn:
                # Never analyzed: the share is unknown, so the scans stay iterative.
                assert await TableStats("memory_shards").rows_share(conn, "alice", DEFAULT_MODEL) == 0
                await owner_execute(database_url, "ANALYZE memory_shards")
                stats = TableStats("memory_shards")
                assert await stats.rows_share(conn, "alice", DEFAULT_MODEL) == pytest.approx(0.8 * 0.8)
                assert await stats.rows_share(conn, "bob", DEFAULT_MODEL) == pytest.approx(0.2 * 0.8)
                assert await stats.rows_share(conn, "carol", DEFAULT_MODEL) == 0
                assert await stats.rows_share(conn, "alice", "another-model") == 0
                assert await stats.rows_share(conn, None, DEFAULT_MODEL) == pytest.approx(0.8)

                async def mode(user: str, limit: int = 10, filtered: bool = False) -> str:
                    return await stats.hnsw_scan_mode(conn, acting_user=user, model=DEFAULT_MODEL, filtered=filtered,
                                                      candidates=vector_candidates(limit), ef_search=ef_search)

                # 64% of 128 rows is ~82, at least twice the 40 candidates of a 10-result search.
                assert await mode("alice") == PLAIN_SCAN
                assert await mode("alice", filtered=True) == ITERATIVE_SCAN  # a source or metadata filter
                assert await mode("alice", limit=50) == ITERATIVE_SCAN  # 200 candidates: more than ef_search
                assert await mode("bob") == ITERATIVE_SCAN  # 16% of the rows
                assert await mode("carol") == ITERATIVE_SCAN

                # The mode is set with the search's tsquery, in one round trip, with a generic plan when
                # the search asks for one and the rows searched are known (else custom plans).
                await stats.search_terms(conn, "note", hnsw_scan=PLAIN_SCAN, population=0.64, generic_plan=True)
                assert await conn.fetchval("SHOW hnsw.iterative_scan") == PLAIN_SCAN
                assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
                await stats.search_terms(conn, "note", hnsw_scan=PLAIN_SCAN, population=0.0, generic_plan=True)
                assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
                await stats.search_terms(conn, "note", hnsw_scan=PLAIN_SCAN, population=0.64, generic_plan=True)
            async with pool.acquire() as conn:  # the same connection, released and acquired again
                # for anything but a search (Database.connection), the pool's settings come back
                await restore_search_settings(conn)
                assert await conn.fetchval("SHOW hnsw.iterative_scan") == ITERATIVE_SCAN
                assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    finally:
        await pool.close()
