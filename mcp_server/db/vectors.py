"""Vectors of any table: what a row's vector is made from, rows waiting for one, storing them,
and rebuilding the vector columns and indexes (a new dimension)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from mcp_server.db.engine import Connection
from mcp_server.db.schema_check import stored_vector_dimensions

# A pattern's vector is made from its title, description and leading content: long rule files
# exceed what embedding models read, and the full text is in the keyword index anyway.
PATTERN_EMBED_CHARS = 2000
# Every text an embedder is given (a memory, a pattern's text above, a query) is at most this many
# bytes of UTF-8. Local models read 256-512 tokens (~1,000-2,000 characters of English); an API
# refuses an input over its own limit (OpenAI: 8,191 tokens) with an error that fails every call
# embedding that text and counts against the embedder. A byte-level BPE token (OpenAI's
# tokenizers) covers at least one byte, so 8,000 bytes are at most 8,000 tokens: 8,000 characters
# of English, ~2,700 of Chinese.
EMBED_INPUT_BYTES = 8_000


def embedding_input(text: str) -> str:
    """`text` cut to EMBED_INPUT_BYTES of UTF-8, at a character boundary: what an embedder is given."""
    encoded = text.encode("utf-8")
    if len(encoded) <= EMBED_INPUT_BYTES:
        return text
    return encoded[:EMBED_INPUT_BYTES].decode("utf-8", errors="ignore")  # (drops a character cut in two)


def memory_embedding_text(content: str) -> str:
    """What a memory's vector is computed from (the one definition: writes and backfills use it)."""
    return embedding_input(content)


def pattern_embedding_text(title: str | None, content: str, metadata: Mapping[str, Any]) -> str:
    """What a pattern's vector is computed from (the one definition: writes and backfills use it)."""
    description = metadata.get("description")
    if description is not None and not isinstance(description, str):
        description = json.dumps(description)
    parts = [title, description, content[:PATTERN_EMBED_CHARS]]
    return embedding_input("\n\n".join(p for p in parts if p is not None))


@dataclass(frozen=True)
class VectorTable:
    table: str
    columns: tuple[str, ...]  # what the text is computed from
    text: Callable[[asyncpg.Record], str]  # the text, from a row holding `columns`
    version: str  # a column every edit moves on: a vector computed before an edit is not stored

    @property
    def hnsw_index(self) -> str:
        return f"ix_{self.table}_embedding_hnsw"

    @property
    def ivfflat_index(self) -> str:
        return f"ix_{self.table}_embedding_ivfflat"


# (only the leading content is read: the rest is not embedded; a character is at least a byte)
MEMORIES = VectorTable("memory_shards", (f"left(content, {EMBED_INPUT_BYTES}) AS content",),
                       lambda row: memory_embedding_text(str(row["content"])), "updated_at")
# (only the leading content is read: the rest is not embedded)
PATTERNS = VectorTable("eng_patterns", ("title", f"left(content, {PATTERN_EMBED_CHARS}) AS content", "metadata"),
                       lambda row: pattern_embedding_text(row["title"], row["content"], row["metadata"]),
                       "last_updated")
ALL_TABLES = (MEMORIES, PATTERNS)

# HNSW graph density (migration 0013 explains the choice and builds the same index).
HNSW_M = 24
HNSW_EF_CONSTRUCTION = 100
# Vectors stay in the table row rather than in TOAST (migration 0016 explains why).
VECTOR_STORAGE = "MAIN"


def indexed_vector(column_sql: str, dimension: int) -> str:
    """The expression the vector indexes are built on: a half-precision copy of the vector.

    Searching is bounded by reading vectors (an HNSW search compares thousands of them), and
    halfvec halves that; its rounding (about 3 significant digits) moves 10-nearest-neighbour
    recall by less than a point, and pgvector indexes it up to 4,000 dimensions (`vector`: 2,000).
    Scores are still computed from the full-precision column. Migration 0014 builds the indexes;
    a search must order by this same expression for PostgreSQL to use them.
    """
    return f"({column_sql})::halfvec({int(dimension)})"


@dataclass(frozen=True, slots=True)
class WaitingRow:
    id: int
    version: datetime
    text: str


async def waiting(
    conn: Connection, spec: VectorTable, model: str, after_id: int, limit: int, *, include_other_models: bool,
) -> list[WaitingRow]:
    """Rows with no vector (or, optionally, one from another model), in id order after `after_id`."""
    columns = ", ".join(spec.columns)
    wanted = "embedding IS NULL"
    params: list[int | str] = [after_id, limit]
    if include_other_models:
        wanted = "(embedding IS NULL OR embedding_model IS DISTINCT FROM $3)"
        params.append(model)
    records = await conn.fetch(
        f"SELECT id, {spec.version} AS version, {columns} FROM {spec.table} WHERE id > $1 AND {wanted} "
        "ORDER BY id LIMIT $2",
        *params,
    )
    return [WaitingRow(r["id"], r["version"], spec.text(r)) for r in records]


async def store(conn: Connection, spec: VectorTable, model: str,
                rows: Sequence[tuple[WaitingRow, np.ndarray]]) -> None:
    """Store each row's vector, unless the row was edited since it was read (it then waits again)."""
    await conn.executemany(
        f"UPDATE {spec.table} SET embedding = $2, embedding_model = $3 WHERE id = $1 AND {spec.version} = $4",
        [(row.id, vector, model, row.version) for row, vector in rows],
    )


async def count_waiting(conn: Connection, spec: VectorTable, model: str) -> int:
    return int(await conn.fetchval(
        f"SELECT count(*) FROM {spec.table} WHERE embedding IS NULL OR embedding_model IS DISTINCT FROM $1", model
    ))


async def count_rows(conn: Connection, tables: Sequence[VectorTable] = ALL_TABLES) -> int:
    """Rows of `tables`, vectors or not (what a change of dimension re-embeds)."""
    return sum([int(await conn.fetchval(f"SELECT count(*) FROM {spec.table}")) for spec in tables])


# Memory for the index builds that follow a resize, within its transaction.
REBUILD_MAINTENANCE_WORK_MEM = "512MB"


async def resize(conn: Connection, spec: VectorTable, dimension: int) -> None:
    """Drop the vector index and change the column to vector(dimension), clearing every vector.

    Run inside the caller's transaction: if anything later fails, the old vectors come back.
    """
    await conn.execute(f"SET LOCAL maintenance_work_mem = '{REBUILD_MAINTENANCE_WORK_MEM}'")
    await conn.execute(f"DROP INDEX IF EXISTS {spec.hnsw_index}")
    await conn.execute(f"DROP INDEX IF EXISTS {spec.ivfflat_index}")
    # A new type brings the type's default storage back: keep vectors inline (migration 0016).
    await conn.execute(
        f"ALTER TABLE {spec.table} ALTER COLUMN embedding TYPE vector({int(dimension)}) USING NULL, "
        f"ALTER COLUMN embedding SET STORAGE {VECTOR_STORAGE}"
    )
    await conn.execute(f"UPDATE {spec.table} SET embedding_model = NULL WHERE embedding_model IS NOT NULL")


async def build_index(conn: Connection, spec: VectorTable, ivfflat_lists: int | None) -> None:
    """The vector index the settings ask for: HNSW by default, IVFFlat when opted in."""
    dimensions = await stored_vector_dimensions(conn)
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
