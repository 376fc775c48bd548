"""Memory use cases: remember, recall, update, forget, list. Shared by the tools and the CLI.

Every row belongs to one user (the service is built for `settings.user_id`). A write never
depends on the embedder: without one the row is stored waiting for a vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from mcp_server.db import memories as repo
from mcp_server.db.search import (
    ITERATIVE_SCAN,
    PLAIN_SCAN,
    SearchMode,
    TableStats,
    result_score,
    set_hnsw_scan,
    vector_candidates,
)
from mcp_server.errors import InvalidInputError, NotFoundError
from mcp_server.identity import current_user_id
from mcp_server.schemas import (
    DeleteResult,
    Memory,
    MemoryPage,
    RecalledMemory,
    RecallResult,
    RememberResult,
)
from mcp_server.services import validation as check
from mcp_server.services.embedding_runtime import EmbedderRuntime
from mcp_server.settings import Settings

MAX_RECALL_LIMIT = 100
MAX_PAGE_SIZE = 200


def _memory(record: asyncpg.Record, model: str) -> Memory:
    return Memory(id=record["id"], content=record["content"], source=record["source"],
                  metadata=record["metadata"], created_at=record["created_at"], updated_at=record["updated_at"],
                  embedded=record["embedding_model"] == model)


def _not_found(memory_id: int) -> NotFoundError:
    return NotFoundError(f"No memory with id {memory_id} for this user. Use `recall` or `list_memories` "
                         "to find the right id.")


@dataclass
class MemoryService:
    pool: asyncpg.Pool
    embedder: EmbedderRuntime
    settings: Settings
    stats: TableStats = field(default_factory=lambda: TableStats("memory_shards"))

    @property
    def user_id(self) -> str:
        """ALETHEIA_USER_ID, or the HTTP token's user for the call in progress."""
        return current_user_id(self.settings.user_id)

    async def remember(self, content: str, source: str | None = None,
                       metadata: dict[str, Any] | None = None) -> RememberResult:
        text = check.content(content, self.settings.max_content_chars)
        label = check.optional_label(source, "source")
        meta = check.metadata(metadata) or {}
        # Embed first, then insert-or-find in one statement: one round trip for new content
        # (a duplicate costs an embedding that is not stored).
        vectors = await self.embedder.try_embed_documents([text])
        vector = vectors[0] if vectors else None
        async with self.pool.acquire() as conn:
            memory_id, created, model = await repo.insert(conn, self.user_id, text, label, meta, vector,
                                                          self.embedder.model)
        return RememberResult(id=memory_id, created=created, embedded=model == self.embedder.model)

    async def recall(self, query: str, limit: int = 5, source: str | None = None,
                     metadata: dict[str, Any] | None = None, min_score: float | None = None) -> RecallResult:
        text = check.content(query, self.settings.max_content_chars, field="query")
        count = check.int_range(limit, "limit", 1, MAX_RECALL_LIMIT)
        label = check.optional_label(source, "source")
        meta = check.metadata(metadata)
        threshold = check.score_threshold(min_score)
        vector = await self.embedder.try_embed_query(text)
        model = self.embedder.model if vector is not None else None
        user = self.user_id
        async with self.pool.acquire() as conn:
            scan = ITERATIVE_SCAN
            if model is not None:
                scan = await self.stats.hnsw_scan_mode(
                    conn, acting_user=user, model=model, candidates=vector_candidates(count),
                    ef_search=self.settings.hnsw_ef_search, filtered=label is not None or bool(meta))
            rare = await self.stats.rare_terms(conn, text, hnsw_scan=scan)

            async def search() -> tuple[list[asyncpg.Record], SearchMode]:
                return await repo.search(conn, user, text=text, vector=vector, model=model, limit=count,
                                         source=label, metadata=meta, min_score=threshold, rare_terms=rare)

            records, mode = await search()
            if scan == PLAIN_SCAN and len(records) < count and threshold is None:
                # Short of rows although the statistics promised enough: they predate rows written
                # since (another user's, or another model's). Search again, scanning on.
                await set_hnsw_scan(conn, ITERATIVE_SCAN)
                records, mode = await search()
        results = [
            RecalledMemory(id=r["id"], content=r["content"], source=r["source"], metadata=r["metadata"],
                           created_at=r["created_at"], score=result_score(r))
            for r in records
        ]
        return RecallResult(results=results, mode=mode)

    async def get(self, memory_id: int) -> Memory:
        memory_id = check.row_id(memory_id)
        async with self.pool.acquire() as conn:
            record = await repo.get(conn, self.user_id, memory_id)
        if record is None:
            raise _not_found(memory_id)
        return _memory(record, self.embedder.model)

    async def update(self, memory_id: int, content: str | None = None, source: str | None = None,
                     metadata: dict[str, Any] | None = None) -> Memory:
        memory_id = check.row_id(memory_id)
        if content is None and source is None and metadata is None:
            raise InvalidInputError("Nothing to update: pass `content`, `source` and/or `metadata`.")
        text = check.content(content, self.settings.max_content_chars) if content is not None else None
        label = check.optional_label(source, "source")
        meta = check.metadata(metadata)
        vector = None
        if text is not None:
            vectors = await self.embedder.try_embed_documents([text])
            vector = vectors[0] if vectors else None
        async with self.pool.acquire() as conn:
            if text is not None:
                other = await repo.find_by_hash(conn, self.user_id, repo.content_hash(text))
                if other is not None and other != memory_id:
                    raise InvalidInputError(f"Memory {other} already has exactly this content; "
                                            f"`forget` one of them instead.")
            record = await repo.update(conn, self.user_id, memory_id, content=text, source=label,
                                       metadata=meta, embedding=vector, model=self.embedder.model)
        if record is None:
            raise _not_found(memory_id)
        return _memory(record, self.embedder.model)

    async def forget(self, memory_id: int) -> DeleteResult:
        memory_id = check.row_id(memory_id)
        async with self.pool.acquire() as conn:
            deleted = await repo.delete(conn, self.user_id, memory_id)
        if not deleted:
            raise _not_found(memory_id)
        return DeleteResult(deleted=True)

    async def list(self, limit: int = 20, cursor: str | None = None, source: str | None = None) -> MemoryPage:
        count = check.int_range(limit, "limit", 1, MAX_PAGE_SIZE)
        before = _parse_cursor(cursor)
        label = check.optional_label(source, "source")
        async with self.pool.acquire() as conn:
            records = await repo.page(conn, self.user_id, count + 1, before, label)
        items = [_memory(r, self.embedder.model) for r in records[:count]]
        next_cursor = str(items[-1].id) if len(records) > count else None
        return MemoryPage(items=items, next_cursor=next_cursor)


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > 2**63 - 1:
        raise InvalidInputError("`cursor` is not one this server returned: pass `next_cursor` from the "
                                "previous page, or omit it for the first page.")
    return int(cursor)
