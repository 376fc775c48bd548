"""The application's database: where it is, brought to the schema this version needs, and a pool.

`open_database(settings)` is the start-up path (ARCHITECTURE.md, "Start-up"): resolve the database (starting
the embedded one), migrate it when it is not at head (the fast path asks PostgreSQL only for the
revision and the vector size), and open the pool. `Database` hands out connections with the
driver's errors translated (db/errors.py); a lost connection also expires the pool's others.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import asyncpg

from mcp_server.db.engine import Connection, DatabaseTarget, open_pool, resolve_target
from mcp_server.db.errors import driver_errors_translated
from mcp_server.db.planner_stats import TableStats
from mcp_server.db.schema_check import schema_is_current
from mcp_server.errors import ConnectionLostError
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

POOL_CLOSE_TIMEOUT_S = 5.0


class Database:
    def __init__(self, target: DatabaseTarget, pool: asyncpg.Pool[asyncpg.Record], hnsw_ef_search: int) -> None:
        self.target = target
        self.hnsw_ef_search = hnsw_ef_search  # what every pooled connection searches with
        self._pool = pool
        self._stats: dict[str, TableStats] = {}

    @classmethod
    async def open(cls, target: DatabaseTarget, settings: Settings, *, scoped: bool = True,
                   **pool_options: Any) -> Database:
        """A pool on `target` (see engine.open_pool for `scoped`)."""
        pool = await open_pool(target, settings, scoped=scoped, **pool_options)
        return cls(target, pool, settings.hnsw_ef_search)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection acting for the calling user, for the length of the block."""
        try:
            with driver_errors_translated():
                async with self._pool.acquire() as conn:
                    yield conn
        except ConnectionLostError:
            await self._pool.expire_connections()  # the others in the pool are likely stale too
            raise

    def statistics(self, table: str) -> TableStats:
        """The planner-statistics cache of `table` (search policy reads it; db/planner_stats.py)."""
        stats = self._stats.get(table)
        if stats is None:
            stats = self._stats[table] = TableStats(table)
        return stats

    async def close(self) -> None:
        """Close the pool, waiting a few seconds for connections in use; then cut them."""
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(POOL_CLOSE_TIMEOUT_S) as waited:
                await self._pool.close()
            if waited.cancelled_caught:
                self._pool.terminate()


async def open_database(settings: Settings, *, scoped: bool = True, **pool_options: Any) -> Database:
    """The configured database at the schema's head, with the application's pool (see
    engine.open_pool for `scoped`)."""
    target = await resolve_target(settings)
    with driver_errors_translated():
        if not await schema_is_current(target, settings):
            from mcp_server.db import migrate  # Alembic is imported only when something must change

            await migrate.upgrade(target, settings)
    return await Database.open(target, settings, scoped=scoped, **pool_options)
