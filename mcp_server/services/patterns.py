"""Engineering patterns: store, find by file context and meaning, and the CRUD around them.

Ranking in find_patterns:
- A pattern *applies* to a file when one of its globs matches it (or it has none: then it
  applies everywhere). Applying patterns always rank above the others.
- context score: 0.5 for a pattern that applies everywhere or through a catch-all glob, up to
  1.0 for a very specific glob (`specificity` in mcp_server.globs).
- query score: 1.0 for the best hybrid-search hit, falling linearly with its rank.
- score = context score + query score; with only a file_path, only applying patterns return.

Long patterns: the vector is made from title + description + the first 2,000 characters (what
an embedding model reads anyway); the full text is in the full-text index, so any word of a
long rule file still finds it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from mcp_server.db import patterns as repo
from mcp_server.db.upkeep import refresh_after_bulk_write, use_bulk_gin_pending_list
from mcp_server.db.vectors import PATTERN_EMBED_CHARS
from mcp_server.errors import InvalidInputError, NotFoundError
from mcp_server.globs import ContextMatch, context_keys, match_contexts, normalize_globs, normalize_path, path_keys
from mcp_server.schemas import DeleteResult, FindPatternsResult, FoundPattern, Pattern, PatternCreated
from mcp_server.services import validation as check
from mcp_server.services.embedding_runtime import EmbedderRuntime
from mcp_server.settings import Settings

MAX_FIND_LIMIT = 100
MAX_TAGS = 50
CANDIDATE_LIMIT = 20_000


def embedding_text(title: str | None, content: str, metadata: dict[str, Any]) -> str:
    """What a pattern's vector is computed from (db.vectors.PATTERNS.text_sql computes the same)."""
    description = metadata.get("description")
    if description is not None and not isinstance(description, str):
        description = json.dumps(description)
    parts = [title, description, content[:PATTERN_EMBED_CHARS]]
    return "\n\n".join(p for p in parts if p is not None)


def to_pattern(record: asyncpg.Record) -> Pattern:
    return Pattern(id=record["id"], title=record["title"], content=record["content"], tags=list(record["tags"]),
                   strategy_type=record["strategy_type"], target_contexts=list(record["target_contexts"]),
                   author=record["author"], metadata=record["metadata"], last_updated=record["last_updated"],
                   source_path=record["source_path"])


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidInputError("`tags` must be a list of strings, e.g. [\"api\", \"testing\"].")
    if len(value) > MAX_TAGS:
        raise InvalidInputError(f"At most {MAX_TAGS} tags.")
    cleaned = [check.optional_label(t, "tags", max_chars=100) for t in value]
    return list(dict.fromkeys(t for t in cleaned if t))


def _not_found(pattern_id: int) -> NotFoundError:
    return NotFoundError(f"No pattern with id {pattern_id}. Use `find_patterns` to find the right id.")


@dataclass(frozen=True)
class PatternInput:
    """A validated pattern (from a tool call, the CLI or an imported rule file)."""

    content: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    strategy_type: str | None = None
    target_contexts: tuple[str, ...] = ()
    author: str | None = None
    metadata: tuple[tuple[str, Any], ...] = ()
    source_path: str | None = None

    @classmethod
    def build(cls, settings: Settings, content: Any, title: Any = None, tags: Any = None, strategy_type: Any = None,
              target_contexts: Any = None, author: Any = None, metadata: Any = None,
              source_path: str | None = None) -> PatternInput:
        return cls(
            content=check.content(content, settings.max_content_chars),
            title=check.optional_label(title, "title", max_chars=300),
            tags=tuple(_tags(tags)),
            strategy_type=check.optional_label(strategy_type, "strategy_type", max_chars=100),
            target_contexts=tuple(normalize_globs(target_contexts)),
            author=check.optional_label(author, "author"),
            metadata=tuple((check.metadata(metadata) or {}).items()),
            source_path=source_path,
        )

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.metadata)

    def columns(self) -> dict[str, Any]:
        return {"content": self.content, "title": self.title, "tags": list(self.tags),
                "strategy_type": self.strategy_type, "target_contexts": list(self.target_contexts),
                "context_keys": context_keys(self.target_contexts), "author": self.author, "metadata": self.meta,
                "source_path": self.source_path}

    def embedding_text(self) -> str:
        return embedding_text(self.title, self.content, self.meta)


@dataclass
class PatternService:
    pool: asyncpg.Pool
    embedder: EmbedderRuntime
    settings: Settings

    async def _vectors(self, items: Sequence[PatternInput]) -> list[Any] | None:
        return await self.embedder.try_embed_documents([i.embedding_text() for i in items])

    def _with_vector(self, columns: dict[str, Any], vector: Any) -> dict[str, Any]:
        if vector is not None:
            columns.update(embedding=vector, embedding_model=self.embedder.model)
        return columns

    async def add(self, item: PatternInput) -> PatternCreated:
        async with self.pool.acquire() as conn:
            existing = await repo.find_identical(conn, item.title, item.content)
        if existing is not None:
            return PatternCreated(id=existing, created=False)
        vectors = await self._vectors([item])
        async with self.pool.acquire() as conn:
            new_id = await repo.insert(conn, self._with_vector(item.columns(), vectors[0] if vectors else None))
        return PatternCreated(id=new_id, created=True)

    async def upsert_many(self, items: Sequence[PatternInput]) -> list[tuple[int, bool]]:
        """Insert or update by (source_path, title), all in one transaction (import batches)."""
        vectors = await self._vectors(items) if items else None
        results = []
        async with self.pool.acquire() as conn, conn.transaction():
            await use_bulk_gin_pending_list(conn)
            for index, item in enumerate(items):
                columns = self._with_vector(item.columns(), vectors[index] if vectors else None)
                if vectors is None:
                    columns.update(embedding=None, embedding_model=None)  # content may have changed
                results.append(await repo.upsert_by_source(conn, columns))
        return results

    async def after_bulk_write(self, written: int) -> None:
        """Once a batch of `upsert_many` calls is done: fresh statistics for the planner (db.upkeep)."""
        async with self.pool.acquire() as conn:
            await refresh_after_bulk_write(conn, "eng_patterns", written)

    async def get(self, pattern_id: int) -> Pattern:
        pattern_id = check.row_id(pattern_id)
        async with self.pool.acquire() as conn:
            record = await repo.get(conn, pattern_id)
        if record is None:
            raise _not_found(pattern_id)
        return to_pattern(record)

    async def update(self, pattern_id: int, **changes: Any) -> Pattern:
        pattern_id = check.row_id(pattern_id)
        given = {k: v for k, v in changes.items() if v is not None}
        if not given:
            raise InvalidInputError("Nothing to update: pass at least one field to change.")
        current = await self.get(pattern_id)
        merged = PatternInput.build(
            self.settings,
            content=given.get("content", current.content), title=given.get("title", current.title),
            tags=given.get("tags", current.tags), strategy_type=given.get("strategy_type", current.strategy_type),
            target_contexts=given.get("target_contexts", current.target_contexts),
            author=given.get("author", current.author), metadata=given.get("metadata", current.metadata),
        )
        columns = merged.columns()
        columns.pop("source_path")
        if merged.embedding_text() != embedding_text(current.title, current.content, current.metadata):
            vectors = await self._vectors([merged])
            columns.update(embedding=vectors[0] if vectors else None,
                           embedding_model=self.embedder.model if vectors else None)
        async with self.pool.acquire() as conn:
            record = await repo.update(conn, pattern_id, columns)
        if record is None:
            raise _not_found(pattern_id)
        return to_pattern(record)

    async def delete(self, pattern_id: int) -> DeleteResult:
        pattern_id = check.row_id(pattern_id)
        async with self.pool.acquire() as conn:
            if not await repo.delete(conn, pattern_id):
                raise _not_found(pattern_id)
        return DeleteResult(deleted=True)

    async def find(self, file_path: str | None = None, query: str | None = None, tags: Any = None,
                   strategy_type: str | None = None, limit: int = 10) -> FindPatternsResult:
        count = check.int_range(limit, "limit", 1, MAX_FIND_LIMIT)
        tag_filter = _tags(tags) or None
        strategy = check.optional_label(strategy_type, "strategy_type", max_chars=100)
        path = normalize_path(file_path) if file_path is not None else None
        text = check.content(query, self.settings.max_content_chars, field="query") if query is not None else None

        relevance: dict[int, float] = {}
        records: dict[int, asyncpg.Record] = {}
        if text is not None:
            vector = await self.embedder.try_embed_query(text)
            async with self.pool.acquire() as conn:
                hits, _mode = await repo.search(
                    conn, text=text, vector=vector, model=self.embedder.model if vector is not None else None,
                    limit=max(count * 5, 50), tags=tag_filter, strategy_type=strategy)
            for rank, record in enumerate(hits):
                relevance[record["id"]] = 1.0 - rank / len(hits)
                records[record["id"]] = record

        contexts: dict[int, ContextMatch] = {}
        if path is not None:
            async with self.pool.acquire() as conn:
                candidates = await repo.candidates_for_path(conn, path_keys(path), tag_filter, strategy,
                                                            CANDIDATE_LIMIT)
            for candidate in candidates:
                matched = match_contexts(list(candidate["target_contexts"]), path)
                if matched.applies:
                    contexts[candidate["id"]] = matched

        if path is not None and text is None:
            ids = set(contexts)
        elif path is None and text is None:
            async with self.pool.acquire() as conn:
                listed = await repo.listing(conn, tag_filter, strategy, count)
            records = {r["id"]: r for r in listed}
            ids = set(records)
        else:
            ids = set(relevance) | set(contexts)

        def context_score(pattern_id: int) -> float:
            match = contexts.get(pattern_id)
            return 0.0 if match is None else 0.5 + 0.5 * match.specificity

        ranked = sorted(ids, key=lambda i: (i in contexts or path is None, context_score(i) + relevance.get(i, 0.0),
                                            i), reverse=True)[:count]
        missing = [i for i in ranked if i not in records]
        if missing:
            async with self.pool.acquire() as conn:
                records.update({r["id"]: r for r in await repo.get_many(conn, missing)})
        results = []
        for pattern_id in ranked:
            record = records[pattern_id]
            match = contexts.get(pattern_id)
            results.append(FoundPattern(
                **to_pattern(record).model_dump(exclude={"source_path"}),
                score=round(context_score(pattern_id) + relevance.get(pattern_id, 0.0), 6),
                matched_contexts=match.matched if match else [],
            ))
        return FindPatternsResult(results=results)

    async def all(self, tags: Any = None, strategy_type: str | None = None, limit: int = 100_000) -> list[Pattern]:
        async with self.pool.acquire() as conn:
            records = await repo.listing(conn, _tags(tags) or None, strategy_type, limit)
        return [to_pattern(r) for r in records]

    async def select(self, paths: Sequence[str] | None, query: str | None, tags: Any,
                     max_patterns: int) -> list[Pattern]:
        """The patterns a context file should hold: applying to any of `paths`, matching query/tags."""
        if paths is not None and (isinstance(paths, str) or not isinstance(paths, list | tuple)):
            raise InvalidInputError("`paths` must be a list of file paths relative to the repository root.")
        if not paths and query is None:
            async with self.pool.acquire() as conn:
                return [to_pattern(r) for r in await repo.listing(conn, _tags(tags) or None, None, max_patterns)]
        chosen: dict[int, float] = {}
        for path in paths or [None]:
            found = await self.find(file_path=path, query=query, tags=tags, limit=min(max_patterns, MAX_FIND_LIMIT))
            for hit in found.results:
                chosen[hit.id] = max(chosen.get(hit.id, 0.0), hit.score)
        ids = [i for i, _ in sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0]))][:max_patterns]
        async with self.pool.acquire() as conn:
            records = await repo.listing(conn, None, None, len(ids) or 1, ids=ids)
        return [to_pattern(r) for r in records] if ids else []
