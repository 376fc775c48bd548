"""Read-only facts about the connected database server."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class PgvectorStatus:
    installed_version: str | None
    available_version: str | None


async def server_version(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SHOW server_version"))


async def pgvector_status(conn: asyncpg.Connection) -> PgvectorStatus:
    row = await conn.fetchrow(
        "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS installed, "
        "(SELECT default_version FROM pg_available_extensions WHERE name = 'vector') AS available"
    )
    assert row is not None
    return PgvectorStatus(row["installed"], row["available"])
