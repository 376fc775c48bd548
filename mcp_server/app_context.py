"""The running application: database, pool, embedder and services, opened and closed as one.

The MCP server's lifespan and the CLI commands both use `open_app`, so they share one start-up
path (resolve the database, migrate under the lock, open the pool, start the embedder).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import asyncpg

from mcp_server.db.engine import DatabaseTarget, open_pool, resolve_target
from mcp_server.db.schema_check import schema_is_current
from mcp_server.embeddings import Embedder
from mcp_server.schemas import ServerStatus
from mcp_server.services import reembed
from mcp_server.services.conversations import ConversationService
from mcp_server.services.embedding_runtime import EmbedderRuntime
from mcp_server.services.memory import MemoryService
from mcp_server.services.patterns import PatternService
from mcp_server.services.provenance import ProvenanceTracker
from mcp_server.services.status import collect_status
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Settings
    target: DatabaseTarget
    pool: asyncpg.Pool
    embedder: EmbedderRuntime
    memories: MemoryService = field(init=False)
    patterns: PatternService = field(init=False)
    conversations: ConversationService = field(init=False)
    provenance: ProvenanceTracker = field(default_factory=ProvenanceTracker)

    def __post_init__(self) -> None:
        self.memories = MemoryService(self.pool, self.embedder, self.settings)
        self.patterns = PatternService(self.pool, self.embedder, self.settings)
        self.conversations = ConversationService(self.pool, self.settings)

    async def status(self) -> ServerStatus:
        return await collect_status(self.pool, self.target, self.embedder, self.settings)

    async def backfill(self) -> None:
        """Embed rows stored while the embedder was unavailable (runs once it is ready)."""
        try:
            async with self.pool.acquire() as conn:
                done = await reembed.embed_rows(conn, self.embedder.embed_documents, self.embedder.model,
                                                self.settings.embedding_batch_size, include_other_models=False)
            if done:
                logger.info("embedded %d row(s) that were waiting for a vector", done)
        except Exception as exc:  # background work: log, never crash the server
            logger.warning("could not embed waiting rows now (%s); `aletheia-mcp reembed` will", exc)


@asynccontextmanager
async def open_app(
    settings: Settings, *, embedder: Embedder | None = None, load_in_background: bool = True
) -> AsyncIterator[AppContext]:
    target = await resolve_target(settings)
    if not await schema_is_current(target, settings):
        from mcp_server.db import migrate  # Alembic is imported only when something must change

        await migrate.upgrade(target, settings)
    pool = await open_pool(target, settings)
    runtime = EmbedderRuntime(settings, embedder)
    try:
        app = AppContext(settings, target, pool, runtime)
        if settings.conversation_retention_days:
            purged = await app.conversations.purge(settings.conversation_retention_days)
            if purged:
                logger.info("purged %d logged exchange(s) older than %d days", purged,
                            settings.conversation_retention_days)
    except BaseException:
        await pool.close()
        raise
    try:
        async with anyio.create_task_group() as tasks:
            if load_in_background:
                runtime.on_ready.append(app.backfill)
                tasks.start_soon(runtime.run)
            yield app
            tasks.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await runtime.aclose()
            with anyio.move_on_after(5) as waited:
                await pool.close()
            if waited.cancelled_caught:
                pool.terminate()
