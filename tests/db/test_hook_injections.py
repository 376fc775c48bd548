"""Migration 0022 (hook_injections) on the real PostgreSQL: row-level security like memory_shards
(forced, per acting user for the application role), and a downgrade that drops only the table."""

from __future__ import annotations

import asyncpg
import pytest

from mcp_server.db import migrate
from mcp_server.db.engine import DatabaseTarget, open_pool
from mcp_server.identity import acting_as
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio


async def test_hook_injections_are_isolated_per_user_and_the_downgrade_drops_them(
    database_url: str, settings: Settings
) -> None:
    target = DatabaseTarget(database_url, False)
    await migrate.upgrade(target, settings)
    conn = await asyncpg.connect(database_url)  # the login role: maintenance policy, sees every row
    try:
        await conn.execute(
            "INSERT INTO hook_injections (user_id, client, session_id, event, kind, item_id) VALUES "
            "('alice', 'claude-code', 's1', 'prompt', 'memory', 1), "
            "('bob', 'claude-code', 's1', 'prompt', 'memory', 2)")
        forced = await conn.fetchrow("SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                                     "WHERE relname = 'hook_injections'")
        assert forced is not None and tuple(forced) == (True, True)
        pool = await open_pool(target, settings, max_size=1)
        try:
            with acting_as("alice"):
                async with pool.acquire() as app_conn:
                    assert await app_conn.fetchval("SELECT array_agg(item_id) FROM hook_injections") == [1]
                    assert await app_conn.execute("UPDATE hook_injections SET exchange_id = 9") == "UPDATE 1"
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # WITH CHECK: no writing as bob
                        await app_conn.execute("INSERT INTO hook_injections (user_id, client, session_id, event, "
                                               "kind) VALUES ('bob', 'c', 's', 'prompt', 'memory')")
        finally:
            await pool.close()

        await migrate.downgrade(target, settings, "0021")
        assert await conn.fetchval("SELECT to_regclass('hook_injections')") is None
        await migrate.upgrade(target, settings)
        assert await conn.fetchval("SELECT count(*) FROM hook_injections") == 0
    finally:
        await conn.close()
