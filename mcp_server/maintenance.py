"""`aletheia-mcp reembed`: embed waiting rows, switch model, or switch dimension.

Opened without the start-up dimension guard (that guard is what sends people here): the
schema is migrated at the dimension the database already has, then the vectors are rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mcp_server.db import migrate
from mcp_server.db.engine import connect, open_pool, resolve_target
from mcp_server.db.schema_check import VECTOR_DIMENSIONS_SQL
from mcp_server.embeddings import create_embedder
from mcp_server.services import reembed
from mcp_server.settings import Settings


@dataclass(frozen=True)
class ReembedReport:
    embedded: int
    model: str
    dimension: int
    resized_from: int | None  # the old dimension when the columns were altered


async def run_reembed(settings: Settings, progress_total: Callable[[int], Callable[[int], None]]) -> ReembedReport:
    """Re-embed with `settings`' provider/model/dimension; `progress_total(n)` returns a step callback."""
    target = await resolve_target(settings)
    conn = await connect(target, settings.db_connect_timeout_s)
    try:
        stored = await conn.fetch(VECTOR_DIMENSIONS_SQL)
    finally:
        await conn.close()
    stored_dims = {int(r["dimension"]) for r in stored}
    current_dim = next(iter(stored_dims)) if len(stored_dims) == 1 else None
    # Migrate at the dimension the columns have; the dimension guard would refuse otherwise.
    await migrate.upgrade(target, settings.model_copy(update={"embedding_dim": current_dim or settings.embedding_dim}))

    embedder = create_embedder(settings)
    resize = current_dim is not None and current_dim != settings.embedding_dim
    try:
        await embedder.load()
        pool = await open_pool(target, settings, scoped=False, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                if resize:
                    total = int(await conn.fetchval(
                        "SELECT (SELECT count(*) FROM memory_shards) + (SELECT count(*) FROM eng_patterns)"))
                    lists = settings.pgvector_ivfflat_lists if settings.pgvector_enable_ivfflat else None
                    done = await reembed.reembed_with_new_dimension(
                        conn, embedder.embed_documents, embedder.model, settings.embedding_dim,
                        settings.embedding_batch_size, lists, progress_total(total),
                    )
                else:
                    total = await reembed.count_waiting(conn, embedder.model)
                    done = await reembed.embed_rows(
                        conn, embedder.embed_documents, embedder.model, settings.embedding_batch_size,
                        include_other_models=True, progress=progress_total(total),
                    )
        finally:
            await pool.close()
    finally:
        await embedder.aclose()
    return ReembedReport(done, embedder.model, settings.embedding_dim, current_dim if resize else None)
