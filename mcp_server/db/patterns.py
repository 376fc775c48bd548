"""SQL for eng_patterns (shared by everyone using the database; asyncpg, plain records)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import numpy as np

from mcp_server.db.search import HybridQuery, SearchMode, hybrid_search

PATTERN_COLUMNS = ("t.id, t.title, t.content, t.tags, t.strategy_type, t.target_contexts, t.author, t.metadata, "
                   "t.last_updated, t.source_path, t.embedding_model")


def _filters(query: HybridQuery, tags: Sequence[str] | None, strategy_type: str | None) -> None:
    if tags:
        query.filters.append(f"t.tags @> {query.params.add(list(tags))}::text[]")
    if strategy_type:
        query.filters.append(f"t.strategy_type = {query.params.add(strategy_type)}")


async def find_identical(conn: asyncpg.Connection, title: str | None, content: str) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM eng_patterns WHERE content = $1 AND title IS NOT DISTINCT FROM $2 ORDER BY id LIMIT 1",
        content, title,
    )


async def insert(conn: asyncpg.Connection, fields: dict[str, Any]) -> int:
    columns = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return int(await conn.fetchval(
        f"INSERT INTO eng_patterns ({', '.join(columns)}) VALUES ({placeholders}) RETURNING id",
        *fields.values(),
    ))


async def upsert_by_source(conn: asyncpg.Connection, fields: dict[str, Any]) -> tuple[int, bool]:
    """Insert, or update the pattern with the same (source_path, title); returns (id, created)."""
    columns = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in {"source_path", "title"})
    row = await conn.fetchrow(
        f"""
        INSERT INTO eng_patterns ({', '.join(columns)}) VALUES ({placeholders})
        ON CONFLICT (source_path, (COALESCE(title, ''))) WHERE source_path IS NOT NULL
        DO UPDATE SET {updates}, last_updated = now()
        RETURNING id, (xmax = 0) AS created
        """,
        *fields.values(),
    )
    assert row is not None
    return int(row["id"]), bool(row["created"])


async def get(conn: asyncpg.Connection, pattern_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {PATTERN_COLUMNS} FROM eng_patterns t WHERE t.id = $1", pattern_id)


async def get_many(conn: asyncpg.Connection, ids: Sequence[int]) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {PATTERN_COLUMNS} FROM eng_patterns t WHERE t.id = ANY($1::bigint[])", list(ids))


async def update(conn: asyncpg.Connection, pattern_id: int, fields: dict[str, Any]) -> asyncpg.Record | None:
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(fields, start=2))
    return await conn.fetchrow(
        f"UPDATE eng_patterns t SET {assignments}, last_updated = now() WHERE t.id = $1 RETURNING {PATTERN_COLUMNS}",
        pattern_id, *fields.values(),
    )


async def delete(conn: asyncpg.Connection, pattern_id: int) -> bool:
    return await conn.execute("DELETE FROM eng_patterns WHERE id = $1", pattern_id) == "DELETE 1"


async def candidates_for_path(
    conn: asyncpg.Connection, keys: Sequence[str], tags: Sequence[str] | None, strategy_type: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    """(id, target_contexts) of patterns whose context keys overlap the path's (globs then decide)."""
    return await conn.fetch(
        """
        SELECT t.id, t.target_contexts FROM eng_patterns t
        WHERE t.context_keys && $1::text[]
          AND ($2::text[] IS NULL OR t.tags @> $2::text[])
          AND ($3::text IS NULL OR t.strategy_type = $3)
        ORDER BY t.last_updated DESC LIMIT $4
        """,
        list(keys), list(tags) if tags else None, strategy_type, limit,
    )


async def search(
    conn: asyncpg.Connection, *, text: str, vector: np.ndarray | None, model: str | None, limit: int,
    tags: Sequence[str] | None, strategy_type: str | None,
) -> tuple[list[asyncpg.Record], SearchMode]:
    query = HybridQuery(table="eng_patterns", columns=PATTERN_COLUMNS, text=text, vector=vector, model=model,
                        limit=limit)
    _filters(query, tags, strategy_type)
    return await hybrid_search(conn, query)


async def listing(conn: asyncpg.Connection, tags: Sequence[str] | None, strategy_type: str | None,
                  limit: int, ids: Sequence[int] | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""
        SELECT {PATTERN_COLUMNS} FROM eng_patterns t
        WHERE ($1::text[] IS NULL OR t.tags @> $1::text[]) AND ($2::text IS NULL OR t.strategy_type = $2)
          AND ($4::bigint[] IS NULL OR t.id = ANY($4::bigint[]))
        ORDER BY t.strategy_type NULLS LAST, t.title NULLS LAST, t.id LIMIT $3
        """,
        list(tags) if tags else None, strategy_type, limit, list(ids) if ids is not None else None,
    )
