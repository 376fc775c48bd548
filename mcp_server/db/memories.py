"""SQL for memory_shards: every statement is scoped to one user (row-level security agrees).

`search` is the table's one search entry point: it takes the scan decision and the index
terms from the planner's statistics (planner_stats.py), runs the hybrid statement
(hybrid_query.py), and searches again with iterative scans when statistics older than the rows
made a plain scan come back short.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from mcp_server.db.database import Database
from mcp_server.db.engine import ITERATIVE_SCAN, Connection
from mcp_server.db.hybrid_query import (
    KEYWORD_WEIGHT,
    TEXT_SEARCH_CONFIG,
    HybridQuery,
    Params,
    SearchTerms,
    hybrid_search,
    vector_candidates,
)
from mcp_server.db.planner_stats import (
    ENUMERATED_ROWS_BUDGET,
    HYBRID_ENUMERATED_ROWS_BUDGET,
    PLAIN_SCAN,
    set_hnsw_scan,
)
from mcp_server.db.projects import ALL_ROWS, KEY_OF_ROW, Scope
from mcp_server.db.upkeep import refresh_after_bulk_write, use_bulk_gin_pending_list
from mcp_server.schemas import Memory, RecalledMemory, SearchMode

TABLE = "memory_shards"
MEMORY_COLUMNS = f"t.id, t.content, t.source, t.metadata, t.created_at, t.updated_at, t.embedding_model, {KEY_OF_ROW}"


def _same_memory(user: str, project: str, digest: str) -> str:
    """The de-duplication identity: (user, project, content), no project counting as 0 (migration 0018)."""
    return f"user_id = {user} AND COALESCE(project_id, 0) = COALESCE({project}::bigint, 0) AND content_hash = {digest}"


def _memory(record: asyncpg.Record, model: str) -> Memory:
    """A row of MEMORY_COLUMNS; `embedded` when its vector was made by `model` (the current one)."""
    return Memory(id=record["id"], content=record["content"], source=record["source"], metadata=record["metadata"],
                  created_at=record["created_at"], updated_at=record["updated_at"],
                  embedded=record["embedding_model"] == model, project=record["project"])


def _recalled(record: asyncpg.Record) -> RecalledMemory:
    """A search hit: which side found it, its cosine similarity when the row has a vector from the
    query's model, and the share of the query's terms it contains; its score is what `min_score`
    is compared with (hybrid_query.py): the similarity, else that share."""
    similarity, keywords = record["similarity"], record["keyword_score"]
    similarity = round(float(similarity), 6) if similarity is not None else None
    keywords = round(float(keywords), 6) if keywords is not None else None
    score = similarity if similarity is not None else keywords or 0.0
    found_by = "both" if record["by_vector"] and record["by_keywords"] else (
        "vector" if record["by_vector"] else "keywords")
    return RecalledMemory(id=record["id"], content=record["content"], source=record["source"],
                          metadata=record["metadata"], created_at=record["created_at"], score=score,
                          found_by=found_by, similarity=similarity, keyword_score=keywords,
                          project=record["project"])


def content_hash(content: str) -> str:
    """sha256 hex of the content; migration 0007 computes the same in SQL for existing rows."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


async def find_same_content(conn: Connection, user_id: str, memory_id: int, digest: str) -> int | None:
    """Another memory of the user, in the same project as `memory_id`, whose content hashes to `digest`."""
    found = await conn.fetchval(
        """
        SELECT o.id FROM memory_shards m JOIN memory_shards o
          ON o.user_id = m.user_id AND COALESCE(o.project_id, 0) = COALESCE(m.project_id, 0)
        WHERE m.user_id = $1 AND m.id = $2 AND o.content_hash = $3 AND o.id <> m.id
        """,
        user_id, memory_id, digest,
    )
    return int(found) if found is not None else None


async def insert(
    conn: Connection,
    user_id: str,
    project_id: int | None,
    content: str,
    source: str | None,
    metadata: dict[str, Any],
    embedding: np.ndarray | None,
    model: str | None,
) -> tuple[int, bool, str | None]:
    """Insert unless this user has the same content in the project; returns (id, created,
    embedding_model).

    One round trip: the existing row is read in the same statement when the insert conflicts.
    """
    digest = content_hash(content)
    arguments = (user_id, content, digest, source, metadata, embedding, model if embedding is not None else None,
                 project_id)
    row = await conn.fetchrow(
        f"""
        WITH inserted AS (
            INSERT INTO memory_shards (user_id, content, content_hash, source, metadata, embedding, embedding_model,
                                       project_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (user_id, (COALESCE(project_id, 0)), content_hash) DO NOTHING
            RETURNING id, embedding_model
        )
        SELECT id, true AS created, embedding_model FROM inserted
        UNION ALL
        SELECT id, false, embedding_model FROM memory_shards
        WHERE {_same_memory("$1", "$8", "$3")} AND NOT EXISTS (SELECT FROM inserted)
        """,
        *arguments,
    )
    if row is None:
        # The conflicting row was committed by another session after this statement's snapshot
        # was taken (two identical remembers at once): it is visible to a new statement.
        row = await conn.fetchrow(
            f"SELECT id, false AS created, embedding_model FROM memory_shards WHERE {_same_memory('$1', '$2', '$3')}",
            user_id, project_id, digest,
        )
        assert row is not None  # the conflicting row exists: we just collided with it
    return int(row["id"]), bool(row["created"]), row["embedding_model"]


async def get(conn: Connection, user_id: str, memory_id: int, model: str) -> Memory | None:
    record = await conn.fetchrow(
        f"SELECT {MEMORY_COLUMNS} FROM memory_shards t WHERE t.user_id = $1 AND t.id = $2", user_id, memory_id
    )
    return _memory(record, model) if record is not None else None


async def get_many(conn: Connection, user_id: str, ids: Sequence[int], model: str) -> list[Memory]:
    """The user's memories among `ids` (those that exist), in no particular order."""
    records = await conn.fetch(
        f"SELECT {MEMORY_COLUMNS} FROM memory_shards t WHERE t.user_id = $1 AND t.id = ANY($2::bigint[])",
        user_id, list(ids),
    )
    return [_memory(r, model) for r in records]


async def update(
    conn: Connection,
    user_id: str,
    memory_id: int,
    *,
    content: str | None,
    source: str | None,
    metadata: dict[str, Any] | None,
    embedding: np.ndarray | None,
    model: str,
) -> Memory | None:
    """Change the given fields; new content replaces the vector made by `model` (None: waits for one)."""
    record = await conn.fetchrow(
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
    return _memory(record, model) if record is not None else None


async def delete(conn: Connection, user_id: str, memory_id: int) -> bool:
    status = await conn.execute("DELETE FROM memory_shards WHERE user_id = $1 AND id = $2", user_id, memory_id)
    return status == "DELETE 1"


async def page(
    conn: Connection, user_id: str, limit: int, before_id: int | None, source: str | None, model: str,
    scope: Scope,
) -> list[Memory]:
    """Newest first; `before_id` is the cursor (the last id of the previous page)."""
    params = Params(user_id, before_id, source, limit)
    in_scope = scope.predicate(params.add) or "TRUE"
    records = await conn.fetch(
        f"""
        SELECT {MEMORY_COLUMNS} FROM memory_shards t
        WHERE t.user_id = $1 AND ($2::bigint IS NULL OR t.id < $2) AND ($3::text IS NULL OR t.source = $3)
          AND {in_scope}
        ORDER BY t.id DESC LIMIT $4
        """,
        *params.values,
    )
    return [_memory(r, model) for r in records]


async def search(
    database: Database,
    user_id: str,
    *,
    text: str,
    vector: np.ndarray | None,
    model: str | None,
    limit: int,
    source: str | None = None,
    metadata: dict[str, Any] | None = None,
    min_score: float | None = None,
    scope: Scope = ALL_ROWS,
    exclude: Sequence[int] = (),
    max_id: int | None = None,
    keyword_weight: float = KEYWORD_WEIGHT,
) -> tuple[list[RecalledMemory], SearchMode]:
    """The user's memories in `scope` best matching `text` (and `vector`, made by `model`), best
    first, leaving out the ids in `exclude` and those above `max_id` (a recall cursor's pin: rows
    stored since its first page). An empty `text` ranks by the vector alone; no `vector`, by
    keywords alone."""
    stats = database.statistics(TABLE)
    async with database.connection(search=True) as conn:
        scan = ITERATIVE_SCAN
        population = 0.0  # the share of rows searched, when known (the keyword ranking's estimates)
        if model is not None:
            scan = await stats.hnsw_scan_mode(
                conn, acting_user=user_id, model=model, candidates=vector_candidates(limit),
                ef_search=database.hnsw_ef_search, filtered=source is not None or bool(metadata), scope=scope)
            # (cached: hnsw_scan_mode read it) the same population the keyword ranking counts words in
            population = await stats.searched_share(conn, user_id, model, scope)
        budget = ENUMERATED_ROWS_BUDGET if vector is None else HYBRID_ENUMERATED_ROWS_BUDGET
        terms = await stats.search_terms(conn, text, hnsw_scan=scan, population=population, budget=budget,
                                         generic_plan=vector is not None and source is None and not metadata
                                         and max_id is None)  # (an id bound's selectivity needs a custom plan)

        async def once() -> tuple[list[RecalledMemory], SearchMode]:
            return await search_once(conn, user_id, text=text, vector=vector, model=model, limit=limit,
                                     source=source, metadata=metadata, min_score=min_score, terms=terms,
                                     scope=scope, exclude=exclude, max_id=max_id, keyword_weight=keyword_weight)

        hits, mode = await once()
        if scan == PLAIN_SCAN and vector is not None and len(hits) < limit and min_score is None:
            # Short of rows although the statistics promised enough: they predate rows written
            # since (another user's, or another model's). Search again, scanning on.
            await set_hnsw_scan(conn, ITERATIVE_SCAN)
            hits, mode = await once()
    return hits, mode


async def search_once(
    conn: Connection,
    user_id: str,
    *,
    text: str,
    vector: np.ndarray | None,
    model: str | None,
    limit: int,
    source: str | None,
    metadata: dict[str, Any] | None,
    min_score: float | None,
    terms: SearchTerms | None = None,
    scope: Scope = ALL_ROWS,
    exclude: Sequence[int] = (),
    max_id: int | None = None,
    keyword_weight: float = KEYWORD_WEIGHT,
) -> tuple[list[RecalledMemory], SearchMode]:
    """One hybrid statement, with the connection's scan mode as it is and the query's terms as the
    statistics see them (None: no keyword ranking)."""
    query = HybridQuery(table=TABLE, columns=f"t.id, t.content, t.source, t.metadata, t.created_at, {KEY_OF_ROW}",
                        text=text, vector=vector, model=model, limit=limit, min_score=min_score,
                        terms=terms, keyword_weight=keyword_weight)
    query.filters.append(f"t.user_id = {query.params.add(user_id)}")
    in_scope = scope.predicate(query.params.add)
    if in_scope is not None:
        query.filters.append(in_scope)
    if source is not None:
        query.filters.append(f"t.source = {query.params.add(source)}")
    if metadata:
        query.filters.append(f"t.metadata @> {query.params.add(metadata)}::jsonb")
    if exclude:  # inside the candidate scans: the rows left out never take a place among the best
        query.filters.append(f"t.id <> ALL({query.params.add(list(exclude))}::bigint[])")
    if max_id is not None:  # also inside the candidate scans: a newer row would shift the others' ranks
        query.filters.append(f"t.id <= {query.params.add(max_id)}::bigint")
    records, mode = await hybrid_search(conn, query)
    return [_recalled(r) for r in records], mode


async def newest_id(conn: Connection, user_id: str) -> int | None:
    """The id of the user's newest memory (ids only grow), None when there is none: what pins a
    paged recall (ix_memory_shards_user_id_id answers it from the index's end)."""
    found = await conn.fetchval("SELECT max(id) FROM memory_shards WHERE user_id = $1", user_id)
    return int(found) if found is not None else None


async def every_term_matches(conn: Connection, user_id: str, ids: Sequence[int], text: str) -> tuple[int, set[int]]:
    """How many distinct lexemes `text` has, and which of the memories `ids` contain every one of them."""
    row = await conn.fetchrow(
        f"""
        SELECT cardinality(tsvector_to_array(to_tsvector('{TEXT_SEARCH_CONFIG}', $3))) AS terms,
               ARRAY(SELECT t.id FROM memory_shards t WHERE t.user_id = $1 AND t.id = ANY($2::bigint[])
                     AND t.content_tsv @@ plainto_tsquery('{TEXT_SEARCH_CONFIG}', $3)) AS ids
        """,
        user_id, list(ids), text,
    )
    assert row is not None
    return int(row["terms"]), {int(i) for i in row["ids"]}


async def counts(conn: Connection, user_id: str, model: str) -> tuple[int, int]:
    """(memories, memories awaiting an embedding from `model`) for the user."""
    row = await conn.fetchrow(
        "SELECT count(*) AS total, "
        "count(*) FILTER (WHERE embedding IS NULL OR embedding_model IS DISTINCT FROM $2) AS waiting "
        "FROM memory_shards WHERE user_id = $1",
        user_id, model,
    )
    assert row is not None
    return int(row["total"]), int(row["waiting"])


# --- bulk import and export (memories import / export) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryExport:
    content: str
    source: str | None
    metadata: dict[str, Any]
    created_at: datetime
    project: str | None


# content, content_hash, source, metadata JSON, created_at, project id (None: a global memory)
ImportRow = tuple[str, str, str | None, str, datetime | None, int | None]


async def prepare_import(conn: Connection) -> None:
    """The session's staging table for `import_batch` (emptied at every commit)."""
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS memory_import (content text, content_hash text, source text, "
        "metadata text, created_at timestamptz, project_id bigint) ON COMMIT DELETE ROWS"
    )


async def import_batch(conn: Connection, user_id: str, rows: Sequence[ImportRow]) -> int:
    """One batch in one transaction (binary COPY into the staging table, then one INSERT that skips
    content the user already has in the same project); returns the number of rows inserted."""
    async with conn.transaction():
        await use_bulk_gin_pending_list(conn)
        # Committed batches must survive a crash (the import reports them as done), so the WAL
        # flush is waited for: synchronous_commit stays on.
        await conn.copy_records_to_table(
            "memory_import", records=rows,
            columns=["content", "content_hash", "source", "metadata", "created_at", "project_id"],
        )
        status = await conn.execute(
            """
            INSERT INTO memory_shards (user_id, content, content_hash, source, metadata, created_at, updated_at,
                                       project_id)
            SELECT $1, content, content_hash, source, metadata::jsonb, COALESCE(created_at, now()), now(), project_id
            FROM memory_import
            ON CONFLICT (user_id, (COALESCE(project_id, 0)), content_hash) DO NOTHING
            """,
            user_id,
        )
    return int(status.split()[-1])


async def finish_import(conn: Connection, inserted: int) -> None:
    """After the last batch: fresh planner statistics and empty GIN pending lists (db/upkeep.py)."""
    await refresh_after_bulk_write(conn, TABLE, inserted)


async def export(conn: Connection, user_id: str, scope: Scope) -> AsyncIterator[MemoryExport]:
    """The user's memories in `scope`, oldest first, streamed through a server-side cursor."""
    params = Params(user_id)
    in_scope = scope.predicate(params.add) or "TRUE"
    async with conn.transaction():
        cursor = conn.cursor(
            f"SELECT t.content, t.source, t.metadata, t.created_at, {KEY_OF_ROW} FROM memory_shards t "
            f"WHERE t.user_id = $1 AND {in_scope} ORDER BY t.id",
            *params.values, prefetch=2_000,
        )
        async for record in cursor:
            yield MemoryExport(**record)
