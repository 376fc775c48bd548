"""SQL for memory_shards (asyncpg, plain records; every statement is scoped to one user)."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
import numpy as np

from mcp_server.db.search import HybridQuery, SearchMode, hybrid_search

MEMORY_COLUMNS = "t.id, t.content, t.source, t.metadata, t.created_at, t.updated_at, t.embedding_model"


def content_hash(content: str) -> str:
    """sha256 hex of the content; migration 0007 computes the same in SQL for existing rows."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


async def find_by_hash(conn: asyncpg.Connection, user_id: str, digest: str) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM memory_shards WHERE user_id = $1 AND content_hash = $2", user_id, digest
    )


async def insert(
    conn: asyncpg.Connection,
    user_id: str,
    content: str,
    source: str | None,
    metadata: dict[str, Any],
    embedding: np.ndarray | None,
    model: str | None,
) -> tuple[int, bool, str | None]:
    """Insert unless this user has the same content; returns (id, created, embedding_model).

    One round trip: the existing row is read in the same statement when the insert conflicts.
    """
    digest = content_hash(content)
    row = await conn.fetchrow(
        """
        WITH inserted AS (
            INSERT INTO memory_shards (user_id, content, content_hash, source, metadata, embedding, embedding_model)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (user_id, content_hash) DO NOTHING
            RETURNING id, embedding_model
        )
        SELECT id, true AS created, embedding_model FROM inserted
        UNION ALL
        SELECT id, false, embedding_model FROM memory_shards
        WHERE user_id = $1 AND content_hash = $3 AND NOT EXISTS (SELECT FROM inserted)
        """,
        user_id, content, digest, source, metadata, embedding, model if embedding is not None else None,
    )
    if row is None:
        # The conflicting row was committed by another session after this statement's snapshot
        # was taken (two identical remembers at once): it is visible to a new statement.
        row = await conn.fetchrow(
            "SELECT id, false AS created, embedding_model FROM memory_shards WHERE user_id = $1 AND content_hash = $2",
            user_id, digest,
        )
        assert row is not None  # the conflicting row exists: we just collided with it
    return int(row["id"]), bool(row["created"]), row["embedding_model"]


async def get(conn: asyncpg.Connection, user_id: str, memory_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {MEMORY_COLUMNS} FROM memory_shards t WHERE t.user_id = $1 AND t.id = $2", user_id, memory_id
    )


async def update(
    conn: asyncpg.Connection,
    user_id: str,
    memory_id: int,
    *,
    content: str | None,
    source: str | None,
    metadata: dict[str, Any] | None,
    embedding: np.ndarray | None,
    model: str | None,
) -> asyncpg.Record | None:
    """Change the given fields; new content replaces the vector (None: waits for one)."""
    return await conn.fetchrow(
        f"""
        UPDATE memory_shards t SET
            content = COALESCE($3, t.content),
            content_hash = CASE WHEN $3::text IS NULL THEN t.content_hash ELSE $4 END,
            source = CASE WHEN $5 THEN $6 ELSE t.source END,
            metadata = COALESCE($7, t.metadata),
            embedding = CASE WHEN $3::text IS NULL THEN t.embedding ELSE $8 END,
            embedding_model = CASE WHEN $3::text IS NULL THEN t.embedding_model ELSE $9 END,
            updated_at = now()
        WHERE t.user_id = $1 AND t.id = $2
        RETURNING {MEMORY_COLUMNS}
        """,
        user_id, memory_id, content, content_hash(content) if content is not None else None,
        source is not None, source or None, metadata, embedding, model if embedding is not None else None,
    )


async def delete(conn: asyncpg.Connection, user_id: str, memory_id: int) -> bool:
    status = await conn.execute("DELETE FROM memory_shards WHERE user_id = $1 AND id = $2", user_id, memory_id)
    return status == "DELETE 1"


async def page(
    conn: asyncpg.Connection, user_id: str, limit: int, before_id: int | None, source: str | None
) -> list[asyncpg.Record]:
    """Newest first; `before_id` is the cursor (the last id of the previous page)."""
    return await conn.fetch(
        f"""
        SELECT {MEMORY_COLUMNS} FROM memory_shards t
        WHERE t.user_id = $1 AND ($2::bigint IS NULL OR t.id < $2) AND ($3::text IS NULL OR t.source = $3)
        ORDER BY t.id DESC LIMIT $4
        """,
        user_id, before_id, source, limit,
    )


async def search(
    conn: asyncpg.Connection,
    user_id: str,
    *,
    text: str,
    vector: np.ndarray | None,
    model: str | None,
    limit: int,
    source: str | None,
    metadata: dict[str, Any] | None,
    min_score: float | None,
    rare_terms: str | None = None,
) -> tuple[list[asyncpg.Record], SearchMode]:
    query = HybridQuery(table="memory_shards", columns="t.id, t.content, t.source, t.metadata, t.created_at",
                        text=text, vector=vector, model=model, limit=limit, min_score=min_score,
                        rare_terms=rare_terms)
    query.filters.append(f"t.user_id = {query.params.add(user_id)}")
    if source is not None:
        query.filters.append(f"t.source = {query.params.add(source)}")
    if metadata:
        query.filters.append(f"t.metadata @> {query.params.add(metadata)}::jsonb")
    return await hybrid_search(conn, query)


async def counts(conn: asyncpg.Connection, user_id: str, model: str) -> tuple[int, int]:
    """(memories, memories awaiting an embedding from `model`) for the user."""
    row = await conn.fetchrow(
        "SELECT count(*) AS total, "
        "count(*) FILTER (WHERE embedding IS NULL OR embedding_model IS DISTINCT FROM $2) AS waiting "
        "FROM memory_shards WHERE user_id = $1",
        user_id, model,
    )
    assert row is not None
    return int(row["total"]), int(row["waiting"])
