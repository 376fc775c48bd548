"""Memory use cases: remember, recall, update, forget, list, and import / export as JSONL.

Every row belongs to the acting user (ALETHEIA_USER_ID, or the HTTP token's user for the call in
progress), and to a project or none (global: services/projects.py). A write never depends on the
embedder: without one the row is stored waiting for a vector. Imports commit batch by batch (an
interrupted import keeps every finished batch), skip content the user already has in the same
project, and stage each batch with binary COPY.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, cast

import anyio
import numpy as np

from mcp_server.db import memories as repo
from mcp_server.db.database import Database
from mcp_server.db.engine import Connection
from mcp_server.db.memories import ImportRow
from mcp_server.db.projects import ALL_ROWS
from mcp_server.db.vectors import MEMORIES, memory_embedding_text
from mcp_server.errors import EmbeddingUnavailableError, InvalidEmbeddingError, InvalidInputError, NotFoundError
from mcp_server.identity import current_user_id
from mcp_server.redact import Redactor
from mcp_server.repository import find_repository
from mcp_server.schemas import (
    MAX_MEMORY_PAGE,
    MAX_QUERY_CHARS,
    MAX_RECALL_LIMIT,
    RECALL_MODES,
    DeleteResult,
    Memory,
    MemoryPage,
    ReadScope,
    RecalledMemory,
    RecallMode,
    RecallResult,
    RememberResult,
    SearchMode,
    WriteScope,
)
from mcp_server.services import memory_jsonl
from mcp_server.services import validation as check
from mcp_server.services.embedding_runtime import EmbedderRuntime
from mcp_server.services.fusion_weights import keyword_weight
from mcp_server.services.memory_jsonl import ImportReport, ParsedLine
from mcp_server.services.paging import call_arguments, cursor_pin
from mcp_server.services.progress import Progress
from mcp_server.services.projects import ProjectService, project_of
from mcp_server.services.provenance import ProvenanceTracker
from mcp_server.services.reembed import ReembedService
from mcp_server.services.response_fit import SHORTENED_MARKS, refuse_shortened_edit
from mcp_server.services.result_pages import recall_page
from mcp_server.settings import Settings


def _not_found(memory_id: int) -> NotFoundError:
    return NotFoundError(f"No memory with id {memory_id} for this user. Use `recall` or `list_memories` "
                         "to find the right id.")


class MemoryService:
    def __init__(self, database: Database, embedder: EmbedderRuntime, settings: Settings,
                 provenance: ProvenanceTracker, vectors: ReembedService, projects: ProjectService,
                 redactor: Redactor) -> None:
        self.database = database
        self.embedder = embedder
        self.settings = settings
        self.provenance = provenance
        self.vectors = vectors
        self.projects = projects
        # Memories are injected into later prompts: a secret in one must not be stored (nor embedded).
        self.redactor = redactor

    @property
    def user_id(self) -> str:
        """ALETHEIA_USER_ID, or the HTTP token's user for the call in progress."""
        return current_user_id(self.settings.user_id)

    async def remember(self, content: str, source: str | None = None, metadata: dict[str, Any] | None = None,
                       scope: WriteScope = "project", project: str | None = None) -> RememberResult:
        """Store a memory under the current project (`scope="global"`: for every project), its secrets
        redacted."""
        text, label, meta, redactions = self._redacted(check.content(content, self.settings.max_content_chars),
                                                       check.optional_label(source, "source"),
                                                       check.metadata(metadata) or {})
        target = self.projects.write_target(scope, project)
        project_id = await self.projects.id_to_write(target)
        # Embed first, then insert-or-find in one statement: one round trip for new content
        # (a duplicate costs an embedding that is not stored).
        vectors = await self.embedder.try_embed_documents([memory_embedding_text(text)])
        vector = vectors[0] if vectors else None
        async with self.database.connection() as conn:
            memory_id, created, model = await repo.insert(conn, self.user_id, project_id, text, label, meta, vector,
                                                          self.embedder.model)
        return RememberResult(id=memory_id, created=created, embedded=model == self.embedder.model,
                              project=target.key if target else None, redactions=redactions)

    def _redacted(self, text: str | None, label: str | None,
                  meta: dict[str, Any] | None) -> tuple[Any, str | None, Any, int]:
        """The text, source and metadata of a memory with their secrets redacted, and how many."""
        redacted, count = self.redactor.redact_json([text, label, meta])
        return redacted[0], redacted[1], redacted[2], count

    async def recall(self, query: str, limit: int = 5, source: str | None = None,
                     metadata: dict[str, Any] | None = None, min_score: float | None = None,
                     scope: ReadScope = "project", project: str | None = None, *,
                     session: str | None = None, cursor: str | None = None,
                     mode: RecallMode = "hybrid") -> RecallResult:
        """The user's memories best matching `query`, in the current project and the global ones
        (see `scope`), ranked by `mode`: "hybrid", meaning and keywords fused (keywords alone while
        the embedder is unavailable); "vector", meaning alone (an error when the query cannot be
        embedded); "keywords", keywords alone, without embedding the query. `min_score` is a floor
        on each hit's `score`: its cosine similarity when the memory has a vector and the query
        one, else the share of the query's terms it contains (in "keywords", always that share).
        With a `session` (a model asking), the result is fitted to MAX_RESPONSE_CHARS without
        dropping any (long contents shortened first, then pages: `cursor`) and its ids are recorded
        as that session's provenance."""
        arguments = call_arguments(cursor, "recall", {"query": query, "limit": limit, "source": source,
                                                      "metadata": metadata, "min_score": min_score,
                                                      "scope": scope, "project": project, "mode": mode})
        # The newest memory the first page's search considered: later pages consider none newer, so
        # that memories stored meanwhile (hooks capture them) do not shift the ranking under the cursor.
        pin = cursor_pin(cursor, "recall", arguments)
        text = check.content(query, MAX_QUERY_CHARS, field="query", setting=None)
        count = check.int_range(limit, "limit", 1, MAX_RECALL_LIMIT)
        label = check.optional_label(source, "source")
        meta = check.metadata(metadata)
        threshold = check.score_threshold(min_score)
        ranking = _recall_mode(mode)
        in_scope = await self.projects.read_scope(scope, project)
        vector = await self._query_vector(text, ranking)
        paged = session is not None or cursor is not None
        hits, ran = await repo.search(
            self.database, self.user_id, text="" if ranking == "vector" else text, vector=vector,
            # (the model even without a vector: its share of the user's rows sizes the keyword ranking's reads)
            model=self.embedder.model, limit=count, source=label, metadata=meta,
            min_score=threshold, scope=in_scope, max_id=pin,
            keyword_weight=keyword_weight(self.settings.embedding_provider))
        if not paged:
            return RecallResult(results=hits, mode=ran)
        result = recall_page(hits, ran, cursor, arguments, self.settings.max_response_chars, pin)
        if result.next_cursor is not None and pin is None:
            # A first page with more to come: its cursor pins the newest memory now. Read only then
            # (one query in the rare call that pages; a filter on it would also make the search
            # slower, so the first page is searched without one). A memory stored in the instant
            # between the search and this read makes the next page fail with the usual "results
            # changed" error rather than shift silently.
            async with self.database.connection() as conn:
                pin = await repo.newest_id(conn, self.user_id)
            result = recall_page(hits, ran, cursor, arguments, self.settings.max_response_chars, pin)
        if session is not None:  # what the model will see
            self.provenance.record(session, memory_ids=[r.id for r in result.results])
        return result

    async def _query_vector(self, text: str, mode: RecallMode) -> np.ndarray | None:
        """The query's vector for `mode`: none for "keywords" (not embedded at all), None in
        "hybrid" when the embedder is unavailable (keywords then rank alone), an error in "vector"."""
        if mode == "keywords":
            return None
        vector = await self.embedder.try_embed_query(text)
        if vector is None and mode == "vector":
            status = self.embedder.status()
            raise EmbeddingUnavailableError(
                f"recall with mode \"vector\" needs the query's vector, but the embedder ({status.provider} "
                f"{status.model}) cannot make one now: {status.detail or status.state}. Use mode \"keywords\", "
                "or the default \"hybrid\" (it falls back to keywords); `server_status` shows when the "
                "embedder is ready again.")
        return vector

    async def relevant(self, query: str, limit: int, min_similarity: float, exclude: Collection[int] = (), *,
                       keyword_terms: int) -> tuple[list[RecalledMemory], SearchMode]:
        """At most `limit` memories of the current project and global ones (not `exclude`, left out
        in the search itself) whose cosine similarity to `query` is at least `min_similarity`, most
        similar first (a hook adds them to a prompt). By vector alone: in hybrid mode `min_score`
        would let through rows found by keywords that have no vector yet, on the share of the
        query's words they contain, not on a similarity. Without an embedder ("lexical"), only
        memories containing every term of a query that has at least `keyword_terms` of them: a
        weaker signal, so only a strong match counts."""
        text = check.content(query, MAX_QUERY_CHARS, field="query", setting=None)
        in_scope = await self.projects.read_scope("project", None)
        left_out = sorted(exclude)
        vector = await self.embedder.try_embed_query(text)
        if vector is not None:
            return await repo.search(self.database, self.user_id, text="", vector=vector, model=self.embedder.model,
                                     limit=limit, min_score=min_similarity, scope=in_scope, exclude=left_out)
        hits, mode = await repo.search(self.database, self.user_id, text=text, vector=None, model=None,
                                       limit=limit, scope=in_scope, exclude=left_out)
        async with self.database.connection() as conn:
            terms, complete = await repo.every_term_matches(conn, self.user_id, [h.id for h in hits], text)
        return ([h for h in hits if h.id in complete] if terms >= keyword_terms else []), mode

    async def get_many(self, memory_ids: Sequence[int]) -> list[Memory]:
        """The memories among `memory_ids` that still exist, in the order of `memory_ids` (one query)."""
        if not memory_ids:
            return []
        async with self.database.connection() as conn:
            found = {m.id: m for m in await repo.get_many(conn, self.user_id, memory_ids, self.embedder.model)}
        return [found[i] for i in memory_ids if i in found]

    async def get(self, memory_id: int) -> Memory:
        memory_id = check.row_id(memory_id)
        async with self.database.connection() as conn:
            memory = await repo.get(conn, self.user_id, memory_id, self.embedder.model)
        if memory is None:
            raise _not_found(memory_id)
        return memory

    async def update(self, memory_id: int, content: str | None = None, source: str | None = None,
                     metadata: dict[str, Any] | None = None) -> Memory:
        memory_id = check.row_id(memory_id)
        if content is None and source is None and metadata is None:
            raise InvalidInputError("Nothing to update: pass `content`, `source` and/or `metadata`.")
        text, label, meta, _ = self._redacted(
            check.content(content, self.settings.max_content_chars) if content is not None else None,
            check.optional_label(source, "source"), check.metadata(metadata))
        if text is not None and any(mark in text for mark in SHORTENED_MARKS):  # (rare: read the old one only then)
            refuse_shortened_edit(text, (await self.get(memory_id)).content, "memory",
                                  "get_memory with a larger MAX_RESPONSE_CHARS, or `aletheia-mcp memories export`")
        vector = None
        if text is not None:
            vectors = await self.embedder.try_embed_documents([memory_embedding_text(text)])
            vector = vectors[0] if vectors else None
        async with self.database.connection() as conn:
            if text is not None:
                other = await repo.find_same_content(conn, self.user_id, memory_id, repo.content_hash(text))
                if other is not None:
                    raise InvalidInputError(f"Memory {other} already has exactly this content; "
                                            f"`forget` one of them instead.")
            memory = await repo.update(conn, self.user_id, memory_id, content=text, source=label,
                                       metadata=meta, embedding=vector, model=self.embedder.model)
        if memory is None:
            raise _not_found(memory_id)
        return memory

    async def forget(self, memory_id: int) -> DeleteResult:
        memory_id = check.row_id(memory_id)
        async with self.database.connection() as conn:
            deleted = await repo.delete(conn, self.user_id, memory_id)
        if not deleted:
            raise _not_found(memory_id)
        return DeleteResult(deleted=True)

    async def list(self, limit: int = 20, cursor: str | None = None, source: str | None = None,
                   scope: ReadScope = "project", project: str | None = None) -> MemoryPage:
        count = check.int_range(limit, "limit", 1, MAX_MEMORY_PAGE)
        before = _parse_cursor(cursor)
        label = check.optional_label(source, "source")
        in_scope = await self.projects.read_scope(scope, project)
        async with self.database.connection() as conn:
            memories = await repo.page(conn, self.user_id, count + 1, before, label, self.embedder.model, in_scope)
        items = memories[:count]
        next_cursor = str(items[-1].id) if len(memories) > count else None
        return MemoryPage(items=items, next_cursor=next_cursor)

    async def import_jsonl(self, lines: Iterable[str], progress: Progress | None = None, *,
                           embed: bool = False, project: str | None = None,
                           directory: Path | None = None) -> ImportReport:
        """Import memories from JSONL lines in bulk, each into the project its line names (`project`,
        null: global), else the project the call names, else that of the git repository holding
        `directory` (the file's; none outside a repository), else the current one; with `embed`,
        give the new rows vectors afterwards (a failure to embed is reported in the result: the
        rows are stored and wait for a vector)."""
        report = ImportReport()
        current = self.projects.explicit(project)
        if current is None:
            current = project_of(find_repository(directory)) if directory is not None else self.projects.current()
        # Parsing and validating a batch (~17 us a line) runs in a worker thread while PostgreSQL
        # inserts the previous one (to_tsvector and the index entries, ~70 us a row): the two overlap.
        batches = memory_jsonl.batches(lines, report, self.settings.max_content_chars,
                                       current.key if current else None, self.redactor)
        user = self.user_id
        async with self.database.connection() as conn:
            await repo.prepare_import(conn)
            batch = await anyio.to_thread.run_sync(next, batches, None)
            while batch is not None:
                parsed: list[list[ParsedLine] | None] = []

                async def parse_next(into: list[list[ParsedLine] | None] = parsed) -> None:
                    into.append(await anyio.to_thread.run_sync(next, batches, None))

                rows = await self._with_project_ids(conn, batch)
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(parse_next)
                    inserted = await repo.import_batch(conn, user, rows)
                report.inserted += inserted
                report.duplicates += len(batch) - inserted
                if progress:
                    progress(len(batch))
                batch = parsed[0]
            await repo.finish_import(conn, report.inserted)
        if embed:
            try:
                report.embedded = await self.vectors.fill([MEMORIES])
            except (EmbeddingUnavailableError, InvalidEmbeddingError) as exc:  # the rows wait for vectors
                report.embed_error = str(exc)
        return report

    async def _with_project_ids(self, conn: Connection, lines: Sequence[ParsedLine]) -> Sequence[ImportRow]:
        """The batch's rows with their projects' ids (a batch names one project, or a few)."""
        ids = {key: await self.projects.id_to_write(key, conn) for key in {line[5] for line in lines}}
        return [(*line[:5], ids[line[5]]) for line in lines]

    async def export_jsonl(self, out: IO[str], project: str | None = None) -> int:
        """Write the user's memories (only the project's when given) to `out` as JSONL, oldest first;
        returns how many."""
        in_scope = ALL_ROWS if project is None else await self.projects.only_scope("project", project)
        written = 0
        async with self.database.connection() as conn:
            async for memory in repo.export(conn, self.user_id, in_scope):
                out.write(memory_jsonl.export_line(memory))
                written += 1
        return written


def _recall_mode(mode: str) -> RecallMode:
    if mode not in RECALL_MODES:
        raise InvalidInputError(f"`mode` must be one of {', '.join(RECALL_MODES)} (got {mode!r}): \"hybrid\" "
                                "(meaning and keywords), \"vector\" (meaning only) or \"keywords\" (keywords only).")
    return cast(RecallMode, mode)


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > 2**63 - 1:
        raise InvalidInputError("`cursor` is not one this server returned: pass `next_cursor` from the "
                                "previous page, or omit it for the first page.")
    return int(cursor)
