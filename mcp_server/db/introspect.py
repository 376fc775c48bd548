"""Read-only facts about the connected database server."""

from __future__ import annotations

from dataclasses import dataclass

from mcp_server.db.engine import Connection


@dataclass(frozen=True)
class PgvectorStatus:
    installed_version: str | None
    available_version: str | None


async def server_version(conn: Connection) -> str:
    return str(await conn.fetchval("SHOW server_version"))


async def pgvector_status(conn: Connection) -> PgvectorStatus:
    row = await conn.fetchrow(
        "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS installed, "
        "(SELECT default_version FROM pg_available_extensions WHERE name = 'vector') AS available"
    )
    assert row is not None
    return PgvectorStatus(row["installed"], row["available"])


async def schema_revision(conn: Connection) -> str | None:
    exists = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
    return await conn.fetchval("SELECT version_num FROM alembic_version") if exists else None


async def table_counts(conn: Connection, user_id: str, model: str) -> dict[str, int]:
    """Row counts of patterns (shared) and of the user's conversations."""
    row = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM eng_patterns) AS patterns,
               (SELECT count(*) FROM eng_patterns
                 WHERE embedding IS NULL OR embedding_model IS DISTINCT FROM $2) AS patterns_awaiting_embedding,
               (SELECT count(*) FROM raw_conversations WHERE user_id = $1) AS conversations
        """,
        user_id, model,
    )
    assert row is not None
    return {k: int(v) for k, v in dict(row).items()}
