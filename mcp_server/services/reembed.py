"""Filling in vectors: rows waiting for one, a new model, or a new dimension.

Used by the server (once its embedder is ready it embeds rows that were stored without a
vector) and by `aletheia-mcp reembed`. Work goes in batches; each stored batch is committed on
its own, so an interrupted pass loses nothing and the next one continues where it stopped.
A change of dimension is different: the columns are altered, every row re-embedded and the
indexes rebuilt in ONE transaction, so a failure half-way leaves the old vectors in place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import numpy as np

from mcp_server.db import vectors
from mcp_server.db.upkeep import refresh_after_bulk_write
from mcp_server.db.vectors import ALL_TABLES, MEMORIES, VectorTable

__all__ = ["MEMORIES", "count_waiting", "embed_rows", "reembed_with_new_dimension"]

EmbedFn = Callable[[Sequence[str]], Awaitable[list[np.ndarray]]]
ProgressFn = Callable[[int], None]


async def count_waiting(conn: asyncpg.Connection, model: str, tables: Sequence[VectorTable] = ALL_TABLES) -> int:
    return sum([await vectors.count_waiting(conn, spec, model) for spec in tables])


async def embed_rows(
    conn: asyncpg.Connection,
    embed: EmbedFn,
    model: str,
    batch_size: int,
    *,
    include_other_models: bool,
    tables: Sequence[VectorTable] = ALL_TABLES,
    progress: ProgressFn | None = None,
) -> int:
    """Embed every waiting row of `tables`; returns how many rows got a vector."""
    done = 0
    for spec in tables:
        after, table_done = 0, 0
        while True:
            rows = await vectors.waiting(conn, spec, model, after, batch_size,
                                         include_other_models=include_other_models)
            if not rows:
                break
            embedded = await embed([r["text"] for r in rows])
            pairs = zip(rows, embedded, strict=True)
            await vectors.store(conn, spec, model, [(r["id"], r["text"], vector) for r, vector in pairs])
            after = rows[-1]["id"]
            table_done += len(rows)
            if progress:
                progress(len(rows))
        await refresh_after_bulk_write(conn, spec.table, table_done)
        done += table_done
    return done


async def reembed_with_new_dimension(
    conn: asyncpg.Connection,
    embed: EmbedFn,
    model: str,
    dimension: int,
    batch_size: int,
    ivfflat_lists: int | None,
    progress: ProgressFn | None = None,
) -> int:
    """Resize the vector columns, re-embed everything and rebuild the indexes, atomically."""
    async with conn.transaction():
        await conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for spec in ALL_TABLES:
            await vectors.resize(conn, spec, dimension)
        done = await embed_rows(conn, embed, model, batch_size, include_other_models=True, progress=progress)
        for spec in ALL_TABLES:
            await vectors.build_index(conn, spec, ivfflat_lists)
    return done
