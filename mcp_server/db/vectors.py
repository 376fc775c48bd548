"""Rows waiting for a vector, storing vectors, and rebuilding the vector columns (any table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import numpy as np

from mcp_server.db.schema_check import VECTOR_DIMENSIONS_SQL


@dataclass(frozen=True)
class VectorTable:
    table: str
    text_sql: str  # what gets embedded, as SQL over the row

    @property
    def hnsw_index(self) -> str:
        return f"ix_{self.table}_embedding_hnsw"

    @property
    def ivfflat_index(self) -> str:
        return f"ix_{self.table}_embedding_ivfflat"


# HNSW graph density (migration 0013 explains the choice and builds the same index).
HNSW_M = 24
HNSW_EF_CONSTRUCTION = 100


def indexed_vector(column_sql: str, dimension: int) -> str:
    """The expression the vector indexes are built on: a half-precision copy of the vector.

    Searching is bounded by reading vectors (an HNSW search compares thousands of them), and
    halfvec halves that; its rounding (about 3 significant digits) moves 10-nearest-neighbour
    recall by less than a point, and pgvector indexes it up to 4,000 dimensions (`vector`: 2,000).
    Scores are still computed from the full-precision column. Migration 0014 builds the indexes;
    a search must order by this same expression for PostgreSQL to use them.
    """
    return f"({column_sql})::halfvec({int(dimension)})"

MEMORIES = VectorTable("memory_shards", "content")
# A pattern's vector is made from its title, description and leading content (long rule files
# exceed what embedding models read: see services/patterns.embedding_text, which must agree).
PATTERN_EMBED_CHARS = 2000
PATTERNS = VectorTable(
    "eng_patterns",
    f"concat_ws(E'\\n\\n', title, metadata->>'description', left(content, {PATTERN_EMBED_CHARS}))",
)
ALL_TABLES = (MEMORIES, PATTERNS)


async def waiting(
    conn: asyncpg.Connection, spec: VectorTable, model: str, after_id: int, limit: int, *,
    include_other_models: bool,
) -> list[asyncpg.Record]:
    """(id, text) of rows with no vector (or, optionally, one from another model), in id order."""
    if include_other_models:
        return await conn.fetch(
            f"SELECT id, {spec.text_sql} AS text FROM {spec.table} "
            "WHERE id > $1 AND (embedding IS NULL OR embedding_model IS DISTINCT FROM $3) ORDER BY id LIMIT $2",
            after_id, limit, model,
        )
    return await conn.fetch(
        f"SELECT id, {spec.text_sql} AS text FROM {spec.table} WHERE id > $1 AND embedding IS NULL "
        "ORDER BY id LIMIT $2",
        after_id, limit,
    )


async def store(
    conn: asyncpg.Connection, spec: VectorTable, model: str, rows: Sequence[tuple[int, str, np.ndarray]]
) -> None:
    """Store (id, text it was computed from, vector); a row edited meanwhile is left waiting."""
    await conn.executemany(
        f"UPDATE {spec.table} SET embedding = $2, embedding_model = $3 WHERE id = $1 AND {spec.text_sql} = $4",
        [(row_id, vector, model, text) for row_id, text, vector in rows],
    )


async def count_waiting(conn: asyncpg.Connection, spec: VectorTable, model: str) -> int:
    return int(await conn.fetchval(
        f"SELECT count(*) FROM {spec.table} WHERE embedding IS NULL OR embedding_model IS DISTINCT FROM $1", model
    ))


# Vectors stay in the table row rather than in TOAST (migration 0016 explains why).
VECTOR_STORAGE = "MAIN"


async def resize(conn: asyncpg.Connection, spec: VectorTable, dimension: int) -> None:
    """Drop the vector index and change the column to vector(dimension), clearing every vector.

    Run inside the caller's transaction: if anything later fails, the old vectors come back.
    """
    await conn.execute(f"DROP INDEX IF EXISTS {spec.hnsw_index}")
    await conn.execute(f"DROP INDEX IF EXISTS {spec.ivfflat_index}")
    # A new type brings the type's default storage back: keep vectors inline (migration 0016).
    await conn.execute(
        f"ALTER TABLE {spec.table} ALTER COLUMN embedding TYPE vector({int(dimension)}) USING NULL, "
        f"ALTER COLUMN embedding SET STORAGE {VECTOR_STORAGE}"
    )
    await conn.execute(f"UPDATE {spec.table} SET embedding_model = NULL WHERE embedding_model IS NOT NULL")


async def build_index(conn: asyncpg.Connection, spec: VectorTable, ivfflat_lists: int | None) -> None:
    """The vector index the settings ask for: HNSW by default, IVFFlat when opted in."""
    dimensions = {r["column_name"]: r["dimension"] for r in await conn.fetch(VECTOR_DIMENSIONS_SQL)}
    key = indexed_vector("embedding", dimensions[f"{spec.table}.embedding"])
    if ivfflat_lists:
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {spec.ivfflat_index} ON {spec.table} "
            f"USING ivfflat (({key}) halfvec_cosine_ops) WITH (lists = {int(ivfflat_lists)})"
        )
    else:
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {spec.hnsw_index} ON {spec.table} USING hnsw (({key}) halfvec_cosine_ops) "
            f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
        )
