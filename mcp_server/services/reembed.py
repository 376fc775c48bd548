"""Vectors for rows that wait for one, and re-embedding everything with another model or dimension.

- `ReembedService.fill`: rows stored while the embedder was unavailable, or imported in bulk,
  get a vector from the current model, whichever user they belong to. The server runs it as a
  background job (`backfill`) once its embedder is ready and every minute after; `memories
  import` runs it when done.
- `reembed`: `aletheia-mcp reembed` with the settings' provider, model and dimension. It opens
  the database without the start-up dimension guard (that guard is what sends people here): the
  schema is migrated at the dimension the database already has, then the vectors are rebuilt.

Work goes in batches; each stored batch is committed on its own, so an interrupted pass loses
nothing and the next one continues where it stopped. A change of dimension is different: the
columns are altered, every row re-embedded and the indexes rebuilt in ONE transaction, so a
failure half-way leaves the old vectors in place.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mcp_server.db import vectors
from mcp_server.db.database import Database
from mcp_server.db.engine import Connection, resolve_target
from mcp_server.db.schema_check import read_vector_dimensions
from mcp_server.db.upkeep import refresh_after_bulk_write
from mcp_server.db.vectors import ALL_TABLES, VectorTable
from mcp_server.embeddings import create_embedder
from mcp_server.services.embedding_runtime import EmbedderRuntime
from mcp_server.services.progress import Progress, ProgressStart
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

EmbedFn = Callable[[Sequence[str]], Awaitable[list[np.ndarray]]]


async def embed_rows(
    conn: Connection,
    embed: EmbedFn,
    model: str,
    batch_size: int,
    *,
    include_other_models: bool,
    tables: Sequence[VectorTable] = ALL_TABLES,
    progress: Progress | None = None,
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
            embedded = await embed([r.text for r in rows])
            await vectors.store(conn, spec, model, list(zip(rows, embedded, strict=True)))
            after = rows[-1].id
            table_done += len(rows)
            if progress:
                progress(len(rows))
        await refresh_after_bulk_write(conn, spec.table, table_done)
        done += table_done
    return done


async def reembed_with_new_dimension(
    conn: Connection,
    embed: EmbedFn,
    model: str,
    dimension: int,
    batch_size: int,
    ivfflat_lists: int | None,
    progress: Progress | None = None,
) -> int:
    """Resize the vector columns, re-embed everything and rebuild the indexes, atomically."""
    async with conn.transaction():
        for spec in ALL_TABLES:
            await vectors.resize(conn, spec, dimension)
        done = await embed_rows(conn, embed, model, batch_size, include_other_models=True, progress=progress)
        for spec in ALL_TABLES:
            await vectors.build_index(conn, spec, ivfflat_lists)
    return done


class ReembedService:
    def __init__(self, database: Database, embedder: EmbedderRuntime, settings: Settings) -> None:
        self.database = database
        self.embedder = embedder
        self.settings = settings

    async def fill(self, tables: Sequence[VectorTable] = ALL_TABLES, progress: Progress | None = None) -> int:
        """Embed the rows of `tables` that have no vector yet, every user's (the server's own user is
        not the only one: HTTP users' rows wait too); EmbeddingUnavailableError when it cannot.

        Row-level security would limit a pooled connection to the acting user's rows, so this works
        as the login role, like `reembed`. It only adds vectors computed from each row's own text.
        """
        await self.embedder.ensure_loaded()
        async with self.database.maintenance_connection() as conn:
            return await embed_rows(conn, self.embedder.embed_documents, self.embedder.model,
                                    self.settings.embedding_batch_size, include_other_models=False, tables=tables,
                                    progress=progress)

    async def backfill(self) -> None:
        """The background job: embed rows stored while the embedder was unavailable (never raises)."""
        if not self.database.health.available:
            return  # the database is being reconnected; the next run (a minute later) catches up
        try:
            done = await self.fill()
            if done:
                logger.info("embedded %d row(s) that were waiting for a vector", done)
        except Exception as exc:  # background work: log, never crash the server
            logger.warning("could not embed waiting rows now (%s); `aletheia-mcp reembed` will", exc)


@dataclass(frozen=True)
class ReembedReport:
    embedded: int
    model: str
    dimension: int
    resized_from: int | None  # the old dimension when the columns were altered


async def reembed(settings: Settings, progress_total: ProgressStart) -> ReembedReport:
    """Re-embed with `settings`' provider, model and dimension (every user's rows)."""
    from mcp_server.db import migrate  # Alembic is imported only by the commands that migrate

    target = await resolve_target(settings)
    stored_dims = set((await read_vector_dimensions(target, settings.db_connect_timeout_s)).values())
    current_dim = next(iter(stored_dims)) if len(stored_dims) == 1 else None
    # Migrate at the dimension the columns have; the dimension guard would refuse otherwise.
    await migrate.upgrade(target, settings.model_copy(update={"embedding_dim": current_dim or settings.embedding_dim}))

    embedder = create_embedder(settings)
    resize = current_dim is not None and current_dim != settings.embedding_dim
    try:
        await embedder.load()
        # Unscoped: reembed acts on every user's rows, as the login role (no row-level security).
        database = await Database.open(target, settings, scoped=False, min_size=1, max_size=2)
        try:
            async with database.connection() as conn:
                if resize:
                    lists = settings.pgvector_ivfflat_lists if settings.pgvector_enable_ivfflat else None
                    done = await reembed_with_new_dimension(
                        conn, embedder.embed_documents, embedder.model, settings.embedding_dim,
                        settings.embedding_batch_size, lists, progress_total(await vectors.count_rows(conn)),
                    )
                else:
                    waiting = sum([await vectors.count_waiting(conn, spec, embedder.model) for spec in ALL_TABLES])
                    done = await embed_rows(
                        conn, embedder.embed_documents, embedder.model, settings.embedding_batch_size,
                        include_other_models=True, progress=progress_total(waiting),
                    )
        finally:
            await database.close()
    finally:
        await embedder.aclose()
    return ReembedReport(done, embedder.model, settings.embedding_dim, current_dim if resize else None)
