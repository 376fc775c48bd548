"""The start-up fast path: is the schema already what this version needs? (No Alembic import.)

Importing Alembic and SQLAlchemy costs about half a second, so a warm start only asks
PostgreSQL for the recorded revision and the vector columns' size; the full migration path
(db/migrate.py, under the advisory lock) runs only when something has to change.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from mcp_server.db.engine import Connection, DatabaseTarget, single_connection
from mcp_server.errors import EmbeddingDimensionMismatchError
from mcp_server.settings import Settings

_REVISION_FILE = re.compile(r"^(\d{4})_.+\.py$")
VECTOR_DIMENSIONS_SQL = """
    SELECT c.relname || '.' || a.attname AS column_name, a.atttypmod AS dimension
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND NOT a.attisdropped AND a.atttypmod > 0
      AND (c.relname, a.attname) IN (('memory_shards', 'embedding'), ('eng_patterns', 'embedding'))
"""


def migrations_dir() -> Path:
    """`migrations/` at the repository root, or its copy inside an installed wheel."""
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "_migrations", package_dir.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("Alembic migrations not found next to the mcp_server package")


@cache
def shipped_head() -> str:
    """The newest revision shipped (revisions are numbered 0001, 0002, ...; a test pins Alembic's agreement)."""
    numbers = [m.group(1) for p in (migrations_dir() / "versions").iterdir() if (m := _REVISION_FILE.match(p.name))]
    return max(numbers)


async def stored_vector_dimensions(conn: Connection) -> dict[str, int]:
    """`{"memory_shards.embedding": 384, ...}` for the vector columns that exist."""
    return {r["column_name"]: int(r["dimension"]) for r in await conn.fetch(VECTOR_DIMENSIONS_SQL)}


async def read_vector_dimensions(target: DatabaseTarget, timeout: float) -> dict[str, int]:
    """`stored_vector_dimensions` on a connection of its own."""
    async with single_connection(target, timeout) as conn:
        return await stored_vector_dimensions(conn)


async def schema_is_current(target: DatabaseTarget, settings: Settings) -> bool:
    """True when the database is at the shipped head; raises on an EMBEDDING_DIM mismatch."""
    async with single_connection(target, settings.db_connect_timeout_s) as conn:
        if not await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            return False
        if await conn.fetchval("SELECT version_num FROM alembic_version") != shipped_head():
            return False
        for column, dimension in (await stored_vector_dimensions(conn)).items():
            if dimension != settings.embedding_dim:
                raise EmbeddingDimensionMismatchError(settings.embedding_dim, dimension, column)
        return True
