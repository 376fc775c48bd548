"""Isolation enforced by PostgreSQL (row-level security), not only by WHERE clauses."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

from mcp_server.db import migrate
from mcp_server.db.database import Database
from mcp_server.db.engine import DatabaseTarget, open_pool
from mcp_server.identity import acting_as
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio


async def seeded_pool(database_url: str, settings: Settings) -> asyncpg.Pool:
    await migrate.upgrade(DatabaseTarget(database_url, False), settings)
    conn = await asyncpg.connect(database_url)  # the login role: maintenance policy, sees everything
    await conn.execute(
        "INSERT INTO memory_shards (user_id, content, content_hash) VALUES "
        "('alice', 'alice note', 'a1'), ('alice', 'alice plan', 'a2'), ('bob', 'bob note', 'b1');"
        "INSERT INTO raw_conversations (user_id, request_id, messages) VALUES ('alice', 'ra', '[]'), "
        "('bob', 'rb', '[]')"
    )
    await conn.close()
    return await open_pool(DatabaseTarget(database_url, False), settings, max_size=1)  # one connection, reused


async def test_queries_without_where_see_only_the_acting_users_rows(database_url: str, settings: Settings) -> None:
    pool = await seeded_pool(database_url, settings)
    try:
        with acting_as("alice"):
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT count(*) FROM memory_shards") == 2
                assert await conn.fetchval("SELECT count(*) FROM raw_conversations") == 1
                assert await conn.fetchval("SELECT current_user") == "aletheia_app"
                assert await conn.execute("DELETE FROM memory_shards WHERE user_id = 'bob'") == "DELETE 0"
                assert await conn.execute("UPDATE raw_conversations SET model = 'x'") == "UPDATE 1"
                with pytest.raises(asyncpg.InsufficientPrivilegeError):  # WITH CHECK: no writing as bob
                    await conn.execute("INSERT INTO memory_shards (user_id, content) VALUES ('bob', 'forged')")
        with acting_as("bob"):
            async with pool.acquire() as conn:  # the same physical connection, now for bob
                contents = [r["content"] for r in await conn.fetch("SELECT content FROM memory_shards")]
                assert contents == ["bob note"]
                assert await conn.fetchval("SELECT model FROM raw_conversations") is None
    finally:
        await pool.close()


async def test_a_pooled_connection_never_carries_a_user_into_the_next_acquisition(
    database_url: str, settings: Settings
) -> None:
    """The acting user stays set on an idle connection (a round trip saved per acquisition: on stdio
    there is one user), and every acquisition acts for its own user, never the previous one's."""
    pool = await seeded_pool(database_url, settings)  # (one connection: each acquisition reuses it)
    try:
        with acting_as("alice"):
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT current_setting('aletheia.user_id', true)") == "alice"
                alice_sees = await conn.fetchval("SELECT count(*) FROM memory_shards")
        with acting_as("bob"):
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT current_setting('aletheia.user_id', true)") == "bob"
                assert await conn.fetchval("SELECT current_user") == "aletheia_app"
                assert await conn.fetchval("SELECT count(*) FROM memory_shards WHERE user_id = 'alice'") == 0
        with acting_as("alice"):
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT count(*) FROM memory_shards") == alice_sees
        async with pool.acquire() as conn:  # no acting user: ALETHEIA_USER_ID ("tester") has no rows
            assert await conn.fetchval("SELECT current_setting('aletheia.user_id', true)") == "tester"
            assert await conn.fetchval("SELECT count(*) FROM memory_shards") == 0
            # the HNSW session settings survive between acquisitions
            assert await conn.fetchval("SHOW hnsw.iterative_scan") == "relaxed_order"
            assert await conn.fetchval("SHOW hnsw.ef_search") == str(settings.hnsw_ef_search)
    finally:
        await pool.close()


async def test_a_cancelled_maintenance_block_never_leaves_the_login_role_to_the_next_user(
    database_url: str, settings: Settings
) -> None:
    """The acting user is kept on a connection between acquisitions; a task cancelled around the
    maintenance path's RESET ROLE must not leave the next acquisition running as the login role
    (which row-level security lets through). Real cancellations at varied instants (REV19: 186 of
    400 leaked when the bookkeeping was updated after the round trip)."""
    await seeded_pool(database_url, settings)  # (migrations and rows; this test uses a Database)
    database = await Database.open(DatabaseTarget(database_url, False), settings, max_size=1)
    try:
        with acting_as("alice"):
            for attempt in range(200):
                async def maintenance() -> None:
                    async with database.maintenance_connection():
                        await asyncio.sleep(0)

                task = asyncio.ensure_future(maintenance())
                for _ in range(attempt % 12):  # cancel somewhere around the RESET's round trip
                    await asyncio.sleep(0)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                async with database.connection() as conn:
                    assert await conn.fetchval("SELECT current_user") == "aletheia_app", attempt
                    assert await conn.fetchval("SELECT count(*) FROM memory_shards WHERE user_id = 'bob'") == 0
    finally:
        await database.close()
