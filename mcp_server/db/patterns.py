"""SQL for eng_patterns (shared by everyone using the database; a project's, or global)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import numpy as np

from mcp_server.db.database import Database
from mcp_server.db.engine import Connection
from mcp_server.db.hybrid_query import KEYWORD_WEIGHT, TEXT_SEARCH_CONFIG, HybridQuery, Params, hybrid_search
from mcp_server.db.planner_stats import ENUMERATED_ROWS_BUDGET, HYBRID_ENUMERATED_ROWS_BUDGET
from mcp_server.db.projects import ALL_ROWS, KEY_OF_ROW, Scope
from mcp_server.db.upkeep import refresh_after_bulk_write, use_bulk_gin_pending_list
from mcp_server.schemas import Pattern, PatternVersion

TABLE = "eng_patterns"

PATTERN_COLUMNS = ("t.id, t.title, t.content, t.tags, t.strategy_type, t.target_contexts, t.author, t.metadata, "
                   f"t.last_updated, t.source_path, {KEY_OF_ROW}, t.created_by, t.updated_by")
VERSION_COLUMNS = "pattern_id, version, action, changed_by, changed_at, note, snapshot"


def _pattern(record: asyncpg.Record) -> Pattern:
    """A row holding PATTERN_COLUMNS (other columns, such as a search's scores, are ignored).
    Built without validation: the columns' types are the model's (up to thousands per find)."""
    return Pattern.model_construct(**record)


def _filters(params: Params, tags: Sequence[str] | None, strategy_type: str | None, scope: Scope) -> list[str]:
    """Predicates over alias `t` for the listing and search filters."""
    filters = []
    if tags:
        filters.append(f"t.tags @> {params.add(list(tags))}::text[]")
    if strategy_type:
        filters.append(f"t.strategy_type = {params.add(strategy_type)}")
    in_scope = scope.predicate(params.add)
    if in_scope is not None:
        filters.append(in_scope)
    return filters


async def find_identical(conn: Connection, title: str | None, content: str, project_id: int | None) -> int | None:
    """A pattern of the same project (or global) with the same title and content."""
    found = await conn.fetchval(
        "SELECT id FROM eng_patterns WHERE content = $1 AND title IS NOT DISTINCT FROM $2 "
        "AND COALESCE(project_id, 0) = COALESCE($3::bigint, 0) ORDER BY id LIMIT 1",
        content, title, project_id,
    )
    return int(found) if found is not None else None


async def insert(conn: Connection, fields: dict[str, Any]) -> int:
    columns = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return int(await conn.fetchval(
        f"INSERT INTO eng_patterns ({', '.join(columns)}) VALUES ({placeholders}) RETURNING id",
        *fields.values(),
    ))


Upsert = Literal["created", "updated", "unchanged"]

# Identity columns (the conflict target) and derived ones that are not worth a write of their own:
# a row whose other columns equal the file's is left alone (no version, no last_updated change).
_NOT_COMPARED = {"source_path", "title", "project_id", "embedding", "embedding_model"}


async def upsert_by_source(conn: Connection, fields: dict[str, Any]) -> tuple[int, Upsert]:
    """Insert, or update the pattern with the same (project, source_path, title) unless it already
    holds the same fields; returns (id, what happened)."""
    columns = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in {"source_path", "title"})
    compared = [c for c in columns if c not in _NOT_COMPARED]
    row = await conn.fetchrow(
        f"""
        INSERT INTO eng_patterns ({', '.join(columns)}) VALUES ({placeholders})
        ON CONFLICT ((COALESCE(project_id, 0)), source_path, (COALESCE(title, ''))) WHERE source_path IS NOT NULL
        DO UPDATE SET {updates}, last_updated = now()
        WHERE ({', '.join(f'eng_patterns.{c}' for c in compared)})
              IS DISTINCT FROM ({', '.join(f'EXCLUDED.{c}' for c in compared)})
        RETURNING id, (xmax = 0) AS created
        """,
        *fields.values(),
    )
    if row is not None:
        return int(row["id"]), "created" if row["created"] else "updated"
    same = await conn.fetchval(
        "SELECT id FROM eng_patterns WHERE COALESCE(project_id, 0) = COALESCE($1::bigint, 0) AND source_path = $2 "
        "AND COALESCE(title, '') = COALESCE($3, '')", fields.get("project_id"), fields["source_path"],
        fields.get("title"))
    assert same is not None  # the conflict found it, in this transaction
    return int(same), "unchanged"


async def upsert_many(conn: Connection, rows: Sequence[dict[str, Any]],
                      sole: Sequence[bool] | None = None) -> list[tuple[int, Upsert]]:
    """`upsert_by_source` for each row, all in one transaction (an import batch). A row marked
    `sole` is the only pattern of its file: when its title changed (an edited description, or how
    titles are derived), the file's one stored pattern takes the new title first, so it is updated
    in place (same id, same history) instead of a second pattern being created next to it."""
    async with conn.transaction():
        await use_bulk_gin_pending_list(conn)
        results = []
        for index, row in enumerate(rows):
            if sole is not None and sole[index] and row.get("source_path") is not None:
                await _retitle_sole(conn, row.get("project_id"), row["source_path"], row.get("title"))
            results.append(await upsert_by_source(conn, row))
        return results


async def _retitle_sole(conn: Connection, project_id: int | None, source_path: str, title: str | None) -> None:
    await conn.execute(
        """
        UPDATE eng_patterns p SET title = $3
        WHERE COALESCE(p.project_id, 0) = COALESCE($1::bigint, 0) AND p.source_path = $2
          AND p.title IS DISTINCT FROM $3
          AND NOT EXISTS (SELECT FROM eng_patterns o WHERE o.id <> p.id AND o.source_path = p.source_path
                          AND COALESCE(o.project_id, 0) = COALESCE(p.project_id, 0))
        """,
        project_id, source_path, title,
    )


async def prune_source(conn: Connection, project_id: int | None, source_path: str,
                       keep: Sequence[int]) -> list[tuple[int, str | None]]:
    """Delete the patterns imported from `source_path` into the project (None: global) but those
    in `keep` (what the file holds now); returns the (id, title) of each deleted one."""
    records = await conn.fetch(
        "DELETE FROM eng_patterns WHERE COALESCE(project_id, 0) = COALESCE($1::bigint, 0) AND source_path = $2 "
        "AND NOT (id = ANY($3::bigint[])) RETURNING id, title", project_id, source_path, list(keep))
    return sorted((int(r["id"]), r["title"]) for r in records)


async def after_bulk_write(conn: Connection, written: int) -> None:
    """After a batch of `upsert_many` calls: fresh planner statistics, empty GIN pending lists."""
    await refresh_after_bulk_write(conn, TABLE, written)


async def get(conn: Connection, pattern_id: int) -> Pattern | None:
    record = await conn.fetchrow(f"SELECT {PATTERN_COLUMNS} FROM eng_patterns t WHERE t.id = $1", pattern_id)
    return _pattern(record) if record is not None else None


async def get_many(conn: Connection, ids: Sequence[int]) -> list[Pattern]:
    records = await conn.fetch(f"SELECT {PATTERN_COLUMNS} FROM eng_patterns t WHERE t.id = ANY($1::bigint[])",
                               list(ids))
    return [_pattern(r) for r in records]


async def update(conn: Connection, pattern_id: int, fields: dict[str, Any]) -> Pattern | None:
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(fields, start=2))
    record = await conn.fetchrow(
        f"UPDATE eng_patterns t SET {assignments}, last_updated = now() WHERE t.id = $1 RETURNING {PATTERN_COLUMNS}",
        pattern_id, *fields.values(),
    )
    return _pattern(record) if record is not None else None


async def delete(conn: Connection, pattern_id: int) -> bool:
    return await conn.execute("DELETE FROM eng_patterns WHERE id = $1", pattern_id) == "DELETE 1"


async def note_change(conn: Connection, note: str) -> None:
    """Say why, in the version the rest of this transaction writes (see migration 0019)."""
    await conn.fetchval("SELECT set_config('aletheia.change_note', $1, true)", note)


async def history(conn: Connection, pattern_id: int) -> list[PatternVersion]:
    """Every recorded change of a pattern, oldest first (kept after the pattern is deleted)."""
    records = await conn.fetch(
        f"SELECT {VERSION_COLUMNS} FROM eng_pattern_versions WHERE pattern_id = $1 ORDER BY version", pattern_id)
    return [PatternVersion.model_validate(dict(r)) for r in records]


async def version(conn: Connection, pattern_id: int, number: int) -> PatternVersion | None:
    record = await conn.fetchrow(
        f"SELECT {VERSION_COLUMNS} FROM eng_pattern_versions WHERE pattern_id = $1 AND version = $2",
        pattern_id, number)
    return PatternVersion.model_validate(dict(record)) if record is not None else None


async def holder_of_source(conn: Connection, project_id: int | None, source_path: str | None, title: str | None,
                           other_than: int) -> int | None:
    """Another pattern with this import identity (project, source_path, title), if any."""
    if source_path is None:
        return None
    found = await conn.fetchval(
        "SELECT id FROM eng_patterns WHERE COALESCE(project_id, 0) = COALESCE($1::bigint, 0) AND source_path = $2 "
        "AND COALESCE(title, '') = COALESCE($3, '') AND id <> $4", project_id, source_path, title, other_than)
    return int(found) if found is not None else None


async def insert_with_id(conn: Connection, pattern_id: int, fields: dict[str, Any]) -> None:
    """Bring a deleted pattern back under its old id (ids are GENERATED BY DEFAULT)."""
    columns = ["id", *fields]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    await conn.execute(f"INSERT INTO eng_patterns ({', '.join(columns)}) VALUES ({placeholders})",
                       pattern_id, *fields.values())


async def candidates_for_path(
    conn: Connection, keys: Sequence[str], tags: Sequence[str] | None, strategy_type: str | None,
    limit: int, scope: Scope = ALL_ROWS,
) -> Iterator[tuple[int, list[str], bool, bool]]:
    """(id, target_contexts, of a project, globs ignore case) of the patterns whose context keys
    overlap the path's (globs then decide; `metadata.globs_ignore_case`: see rules/globs.py).

    Yielded one at a time from the fetched records: there can be thousands, and holding a copy
    of each at once made every find_patterns call feed the garbage collector (p95 28 -> 81 ms).
    """
    params = Params(list(keys))
    filters = " AND ".join(["t.context_keys && $1::text[]", *_filters(params, tags, strategy_type, scope)])
    records = await conn.fetch(
        f"SELECT t.id, t.target_contexts, t.project_id IS NOT NULL AS of_project, "
        f"(t.metadata->'globs_ignore_case') IS NOT DISTINCT FROM 'true'::jsonb AS ignore_case FROM eng_patterns t "
        f"WHERE {filters} ORDER BY t.last_updated DESC LIMIT {params.add(limit)}",
        *params.values,
    )
    return ((r["id"], r["target_contexts"], r["of_project"], r["ignore_case"]) for r in records)


async def search(
    database: Database, *, text: str, vector: np.ndarray | None, model: str | None, limit: int,
    tags: Sequence[str] | None, strategy_type: str | None, scope: Scope = ALL_ROWS,
    keyword_weight: float = KEYWORD_WEIGHT,
) -> list[Pattern]:
    """The patterns in `scope` best matching `text` (and `vector`, made by `model`), best first."""
    async with database.connection(search=True) as conn:
        # (how common each term is, for the keyword ranking; hnsw.iterative_scan stays as pooled)
        stats = database.statistics(TABLE)
        budget = ENUMERATED_ROWS_BUDGET if vector is None else HYBRID_ENUMERATED_ROWS_BUDGET
        terms = await stats.search_terms(conn, text, population=await stats.project_share(conn, scope),
                                         budget=budget)
        query = HybridQuery(table=TABLE, columns=PATTERN_COLUMNS, text=text, vector=vector, model=model,
                            limit=limit, terms=terms, titles=True, keyword_weight=keyword_weight)
        query.filters.extend(_filters(query.params, tags, strategy_type, scope))
        records, _mode = await hybrid_search(conn, query)
    return [_pattern(r) for r in records]


@dataclass(frozen=True, slots=True)
class QueryEvidence:
    """How one pattern matches a query, on scales that do not depend on what else is stored (a
    search's rank does: the best of two unrelated patterns is still first)."""

    similarity: float | None  # cosine to the query vector; None without one, or without a vector of its model
    every_term: bool  # its title and text hold every term of the query (stemmed, stop words aside)
    shared_term: bool  # they hold at least one of them


async def query_evidence(conn: Connection, ids: Sequence[int], text: str, vector: np.ndarray | None,
                         model: str | None) -> dict[int, QueryEvidence]:
    """QueryEvidence for each of the patterns `ids` (a few dozen: primary-key lookups)."""
    params = Params(list(ids), text)
    similarity = "NULL::float8"
    if vector is not None and model is not None:
        similarity = (f"CASE WHEN t.embedding_model = {params.add(model)} "
                      f"THEN 1 - (t.embedding <=> {params.add(vector)}) END")
    records = await conn.fetch(
        f"""
        SELECT t.id, {similarity} AS similarity,
               t.content_tsv @@ q.every AS every_term,
               tsvector_to_array(t.content_tsv) && q.lexemes AS shared_term
        FROM eng_patterns t,
             (SELECT plainto_tsquery('{TEXT_SEARCH_CONFIG}', $2) AS every,
                     tsvector_to_array(to_tsvector('{TEXT_SEARCH_CONFIG}', $2)) AS lexemes) q
        WHERE t.id = ANY($1::bigint[])
        """,
        *params.values,
    )
    return {r["id"]: QueryEvidence(None if r["similarity"] is None else float(r["similarity"]),
                                   bool(r["every_term"]), bool(r["shared_term"])) for r in records}


async def listing(conn: Connection, tags: Sequence[str] | None, strategy_type: str | None,
                  limit: int, ids: Sequence[int] | None = None, scope: Scope = ALL_ROWS) -> list[Pattern]:
    """Patterns in `scope` (only `ids` when given) in a stable reading order: a project's before the
    global ones (which a `limit` cuts first), then by kind and title."""
    params = Params()
    filters = _filters(params, tags, strategy_type, scope)
    if ids is not None:
        filters.append(f"t.id = ANY({params.add(list(ids))}::bigint[])")
    records = await conn.fetch(
        f"""
        SELECT {PATTERN_COLUMNS} FROM eng_patterns t WHERE {" AND ".join(filters) or "TRUE"}
        ORDER BY t.project_id IS NULL, t.strategy_type NULLS LAST, t.title NULLS LAST, t.id
        LIMIT {params.add(limit)}
        """,
        *params.values,
    )
    return [_pattern(r) for r in records]
