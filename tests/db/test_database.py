"""The database as the services see it: the driver's errors arrive as the domain's, once, at the
edge of db/, and a lost connection leaves the pool usable."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

from mcp_server.db import migrate
from mcp_server.db.database import Database
from mcp_server.db.engine import DatabaseTarget
from mcp_server.errors import ConnectionLostError, DatabaseRefusedError
from mcp_server.identity import acting_as
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(database_url: str, settings: Settings) -> AsyncIterator[Database]:
    target = DatabaseTarget(database_url, embedded=False)
    await migrate.upgrade(target, settings)
    opened = await Database.open(target, settings, max_size=2)
    try:
        with acting_as("tester"):
            yield opened
    finally:
        await opened.close()


async def test_a_refused_statement_is_a_domain_error_without_its_text(database: Database) -> None:
    with pytest.raises(DatabaseRefusedError) as refused:
        async with database.connection() as conn:
            await conn.fetchval("SELECT 'secret-value'::int")
    assert refused.value.sqlstate == "22P02"
    assert "secret-value" not in str(refused.value) and "SQLSTATE 22P02" in str(refused.value)


async def test_a_backend_terminated_mid_statement_is_connection_lost_and_the_pool_recovers(
    database: Database, database_url: str
) -> None:
    async def terminate_the_sleeper() -> None:
        owner = await asyncpg.connect(database_url)
        try:
            for _ in range(200):  # until the statement has started
                if await owner.fetchval("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()"):
                    return
                await anyio.sleep(0.05)
            raise AssertionError("the statement to interrupt never started")
        finally:
            await owner.close()

    with pytest.raises(ExceptionGroup) as failed:  # (this test's own task group wraps it)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(terminate_the_sleeper)
            async with database.connection() as conn:
                await conn.fetchval("SELECT pg_sleep(30)")
    assert failed.group_contains(ConnectionLostError, match=r"connection was lost \(\w+Error\)")
    async with database.connection() as conn:  # stale connections were expired
        assert await conn.fetchval("SELECT 1") == 1


async def test_driver_errors_inside_a_task_group_are_translated_too(database: Database) -> None:
    async def closed_mid_statement() -> None:
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    with pytest.raises(ConnectionLostError):
        async with database.connection(), anyio.create_task_group() as tasks:
            tasks.start_soon(closed_mid_statement)
