"""Engineering patterns: store, find by file context and meaning, and the CRUD around them.

A pattern belongs to a project (a repository) or is global; a read covers the current project's
patterns and the global ones (services/projects.py).

Ranking in find_patterns:
- A pattern *applies* to a file when one of its globs matches it (or it has none: then it
  applies everywhere, unless it is attached only on request: `metadata.attach` "requested" or
  "manual", see rules/render.py; a query finds those). Applying patterns always rank above the others.
- context score: 0.5 for a pattern that applies everywhere or through a catch-all glob, up to
  1.0 for a very specific glob (`specificity` in mcp_server.rules.globs).
- query score: 1.0 for the best hybrid-search hit, falling linearly with its rank.
- score = context score + query score; with only a file_path, only applying patterns return.
- With a file_path, an applying pattern's query score counts only when its relevance is real
  (`real_relevance`): it holds every term of the query, or its vector is at least as similar to
  the query's as the embedder's relevance floor (services/relevance_floors.py, the floor the
  prompt hook uses; for `hashing` a word in common is also needed). A search's rank alone is no
  evidence: the best of a few unrelated patterns is still ranked first. So an unrelated query
  leaves the file's order (most specific first) as it is, while a pattern the query is really
  about (even a catch-all) moves up; two real matches are ordered by the sum.
- Of the same score, the project's own patterns come before global ones.

Long patterns: the vector is made from title + description + the first 2,000 characters (what
an embedding model reads anyway: db.vectors.pattern_embedding_text); the full text is in the
full-text index, so any word of a long rule file still finds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mcp_server.db import patterns as repo
from mcp_server.db.database import Database
from mcp_server.db.projects import Scope
from mcp_server.db.vectors import pattern_embedding_text
from mcp_server.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from mcp_server.identity import current_user_id
from mcp_server.redact import Redactor
from mcp_server.rules.globs import (
    CATCH_ALL_KEY,
    ContextMatch,
    context_keys,
    ignores_case,
    match_contexts,
    normalize_globs,
    normalize_path,
    path_keys,
)
from mcp_server.rules.render import ON_REQUEST, attach_mode
from mcp_server.schemas import (
    MAX_FIND_LIMIT,
    MAX_LABEL_CHARS,
    MAX_PATTERN_CHARS,
    MAX_QUERY_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    DeleteResult,
    FindPatternsResult,
    FoundPattern,
    Pattern,
    PatternCreated,
    PatternVersion,
    ReadScope,
    WriteScope,
)
from mcp_server.services import paging
from mcp_server.services import validation as check
from mcp_server.services.embedding_runtime import EmbedderRuntime
from mcp_server.services.fusion_weights import keyword_weight
from mcp_server.services.projects import ProjectService
from mcp_server.services.provenance import ProvenanceTracker
from mcp_server.services.relevance_floors import Floor, relevance_floor
from mcp_server.services.response_fit import refuse_shortened_edit
from mcp_server.settings import Settings

CANDIDATE_LIMIT = 20_000


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidInputError("`tags` must be a list of strings, e.g. [\"api\", \"testing\"].")
    if len(value) > MAX_TAGS:
        raise InvalidInputError(f"At most {MAX_TAGS} tags.")
    cleaned = [check.optional_label(t, "tags", max_chars=MAX_LABEL_CHARS) for t in value]
    return list(dict.fromkeys(t for t in cleaned if t))


def real_relevance(evidence: repo.QueryEvidence, floor: Floor) -> bool:
    """Whether a pattern is really about the query: it holds every query term, or its vector is as
    similar as the embedder's relevance floor (with a word in common, for embedders that need one)."""
    if evidence.every_term:
        return True
    if evidence.similarity is None or evidence.similarity < floor.similarity:
        return False
    return evidence.shared_term or not floor.shared_word


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
    project: str | None = None  # the project's key; None: a global pattern

    @classmethod
    def build(cls, settings: Settings, content: Any, title: Any = None, tags: Any = None, strategy_type: Any = None,
              target_contexts: Any = None, author: Any = None, metadata: Any = None,
              source_path: str | None = None, project: str | None = None) -> PatternInput:
        # `content` is bounded by MAX_PATTERN_CHARS, not settings.max_content_chars (a memory's bound):
        # rule files are longer than memories, and only a pattern's start is embedded.
        return cls(
            content=check.content(content, MAX_PATTERN_CHARS, setting=None, limit_of=" for a pattern",
                                  advice="Split it into several patterns (a rule file: into several files)."),
            title=check.optional_label(title, "title", max_chars=MAX_TITLE_CHARS),
            tags=tuple(_tags(tags)),
            strategy_type=check.optional_label(strategy_type, "strategy_type", max_chars=MAX_LABEL_CHARS),
            target_contexts=tuple(normalize_globs(target_contexts)),
            author=check.optional_label(author, "author"),
            metadata=tuple((check.metadata(metadata) or {}).items()),
            source_path=source_path,
            project=project,
        )

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.metadata)

    def columns(self) -> dict[str, Any]:
        """The stored columns, but the project's id (the service knows it)."""
        return {"content": self.content, "title": self.title, "tags": list(self.tags),
                "strategy_type": self.strategy_type, "target_contexts": list(self.target_contexts),
                "context_keys": self.context_keys(), "author": self.author, "metadata": self.meta,
                "source_path": self.source_path}

    def context_keys(self) -> list[str]:
        """The keys a file's path finds it by: none for a pattern attached only on request (a Cursor
        Agent Requested or Manual rule, a Copilot file without `applyTo`), which a query still finds."""
        if attach_mode(self.target_contexts, self.meta) in ON_REQUEST:
            return []
        return context_keys(self.target_contexts, ignore_case=ignores_case(self.meta))

    def embedding_text(self) -> str:
        return pattern_embedding_text(self.title, self.content, self.meta)



class PatternService:
    def __init__(self, database: Database, embedder: EmbedderRuntime, settings: Settings,
                 provenance: ProvenanceTracker, projects: ProjectService, redactor: Redactor) -> None:
        self.database = database
        self.embedder = embedder
        self.settings = settings
        self.provenance = provenance
        self.projects = projects
        # A pattern is injected into every agent's context: a secret pasted into one must not travel.
        self.redactor = redactor
        # How similar to a query a pattern's vector must be for its relevance to be real: the model's
        # floor, not HOOK_MIN_SCORE (that one tunes how much a prompt hook adds).
        self.query_floor = relevance_floor(settings.model_copy(update={"hook_min_score": None}),
                                           settings.embedding_provider, embedder.model)

    def _redacted(self, item: PatternInput) -> PatternInput:
        """`item` with secrets replaced in every text field but its globs (which name files)."""
        fields = {"content": item.content, "title": item.title, "tags": list(item.tags),
                  "strategy_type": item.strategy_type, "author": item.author, "metadata": item.meta}
        clean, count = self.redactor.redact_json(fields)
        if not count:
            return item
        return replace(item, content=clean["content"], title=clean["title"], tags=tuple(clean["tags"]),
                       strategy_type=clean["strategy_type"], author=clean["author"],
                       metadata=tuple(clean["metadata"].items()))

    def require_maintainer(self) -> None:
        """Patterns are shared by every user: a deployment may let only its maintainers change them."""
        maintainers = self.settings.pattern_maintainers
        user = current_user_id(self.settings.user_id)
        if maintainers and user not in maintainers:
            raise PermissionDeniedError(
                f"User {user!r} may read patterns but not change them: this server lets only its pattern "
                f"maintainers ({', '.join(maintainers)}) add, change, import, delete or restore them "
                "(ALETHEIA_PATTERN_MAINTAINERS). Ask one of them, or keep it as a memory with `remember`.")

    async def _vectors(self, items: Sequence[PatternInput]) -> list[Any] | None:
        return await self.embedder.try_embed_documents([i.embedding_text() for i in items])

    def _with_vector(self, columns: dict[str, Any], vector: Any) -> dict[str, Any]:
        if vector is not None:
            columns.update(embedding=vector, embedding_model=self.embedder.model)
        return columns

    async def add(self, content: Any, title: Any = None, tags: Any = None, strategy_type: Any = None,
                  target_contexts: Any = None, author: Any = None, metadata: Any = None,
                  scope: WriteScope = "project", project: str | None = None) -> PatternCreated:
        """Store a new pattern in the current project (`scope="global"`: for every project); the same
        title and content again there returns the existing id."""
        self.require_maintainer()
        item = self._redacted(PatternInput.build(self.settings, content, title, tags, strategy_type,
                                                 target_contexts, author, metadata))
        target = self.projects.write_target(scope, project)
        project_id = await self.projects.id_to_write(target)
        async with self.database.connection() as conn:
            existing = await repo.find_identical(conn, item.title, item.content, project_id)
        if existing is not None:
            return PatternCreated(id=existing, created=False)
        vectors = await self._vectors([item])
        columns = self._with_vector(item.columns(), vectors[0] if vectors else None)
        async with self.database.connection() as conn:
            new_id = await repo.insert(conn, {**columns, "project_id": project_id})
        return PatternCreated(id=new_id, created=True)

    async def upsert_many(self, items: Sequence[PatternInput],
                          sole: Sequence[bool] | None = None) -> list[tuple[int, repo.Upsert]]:
        """Insert or update by (project, source_path, title), all in one transaction (import batches);
        `sole` marks the items that are their file's only pattern (see db.patterns.upsert_many)."""
        self.require_maintainer()
        items = [self._redacted(item) for item in items]
        vectors = await self._vectors(items) if items else None
        rows = []
        for index, item in enumerate(items):
            columns = self._with_vector(item.columns(), vectors[index] if vectors else None)
            if vectors is None:
                columns.update(embedding=None, embedding_model=None)  # content may have changed
            columns["project_id"] = await self.projects.id_to_write(item.project)
            rows.append(columns)
        async with self.database.connection() as conn:
            return await repo.upsert_many(conn, rows, sole)

    async def after_bulk_write(self, written: int) -> None:
        """Once a batch of `upsert_many` calls is done: fresh statistics for the planner (db.upkeep)."""
        async with self.database.connection() as conn:
            await repo.after_bulk_write(conn, written)

    async def get(self, pattern_id: int) -> Pattern:
        pattern_id = check.row_id(pattern_id)
        async with self.database.connection() as conn:
            pattern = await repo.get(conn, pattern_id)
        if pattern is None:
            raise _not_found(pattern_id)
        return pattern

    async def update(self, pattern_id: int, **changes: Any) -> Pattern:
        self.require_maintainer()
        pattern_id = check.row_id(pattern_id)
        given = {k: v for k, v in changes.items() if v is not None}
        if not given:
            raise InvalidInputError("Nothing to update: pass at least one field to change.")
        current = await self.get(pattern_id)
        if isinstance(given.get("content"), str):
            refuse_shortened_edit(given["content"], current.content, "pattern",
                                  f"aletheia://patterns/{pattern_id}, or `aletheia-mcp patterns export`")
        merged = self._redacted(PatternInput.build(
            self.settings,
            content=given.get("content", current.content), title=given.get("title", current.title),
            tags=given.get("tags", current.tags), strategy_type=given.get("strategy_type", current.strategy_type),
            target_contexts=given.get("target_contexts", current.target_contexts),
            author=given.get("author", current.author), metadata=given.get("metadata", current.metadata),
        ))
        columns = merged.columns()
        columns.pop("source_path")
        if merged.embedding_text() != pattern_embedding_text(current.title, current.content, current.metadata):
            vectors = await self._vectors([merged])
            columns.update(embedding=vectors[0] if vectors else None,
                           embedding_model=self.embedder.model if vectors else None)
        async with self.database.connection() as conn:
            pattern = await repo.update(conn, pattern_id, columns)
        if pattern is None:
            raise _not_found(pattern_id)
        return pattern

    async def delete(self, pattern_id: int) -> DeleteResult:
        self.require_maintainer()
        pattern_id = check.row_id(pattern_id)
        async with self.database.connection() as conn:
            if not await repo.delete(conn, pattern_id):
                raise _not_found(pattern_id)
        return DeleteResult(deleted=True)

    async def history(self, pattern_id: int) -> list[PatternVersion]:
        """Every change of a pattern, oldest first; a deleted pattern keeps its history."""
        pattern_id = check.row_id(pattern_id)
        async with self.database.connection() as conn:
            versions = await repo.history(conn, pattern_id)
        if not versions:
            raise NotFoundError(f"Pattern {pattern_id} has no history: no pattern with that id was ever stored "
                                "(since history began).")
        return versions

    async def restore(self, pattern_id: int, version: int) -> Pattern:
        """Put a pattern back as it was at `version` (a new version records the restore); a deleted
        pattern comes back under its old id."""
        self.require_maintainer()
        pattern_id = check.row_id(pattern_id)
        number = check.int_range(version, "version", 1, 2**31 - 1)
        async with self.database.connection() as conn:
            old = await repo.version(conn, pattern_id, number)
        if old is None:
            raise NotFoundError(f"Pattern {pattern_id} has no version {number}: "
                                f"`aletheia-mcp patterns history {pattern_id}` lists its versions.")
        fields = old.snapshot
        # (Redacted again: a version from before redaction covered a field may still hold a secret.)
        item = self._redacted(PatternInput.build(
            self.settings, fields.get("content"), fields.get("title"), fields.get("tags"), fields.get("strategy_type"),
            fields.get("target_contexts"), fields.get("author"), fields.get("metadata"),
            source_path=fields.get("source_path")))
        vectors = await self._vectors([item])
        columns = self._with_vector(item.columns(), vectors[0] if vectors else None)
        if vectors is None:
            columns.update(embedding=None, embedding_model=None)  # the backfill embeds it later
        columns["project_id"] = fields.get("project_id")
        async with self.database.connection() as conn, conn.transaction():
            holder = await repo.holder_of_source(conn, columns["project_id"], item.source_path, item.title, pattern_id)
            if holder is not None:
                raise InvalidInputError(
                    f"Pattern {holder} now holds what version {number} was imported from ({item.source_path}, "
                    f"titled {item.title!r}); delete or rename it first. Nothing was changed.")
            await repo.note_change(conn, f"restored version {number}")
            restored = await repo.update(conn, pattern_id, columns)
            if restored is None:
                await repo.insert_with_id(conn, pattern_id, columns)
                restored = await repo.get(conn, pattern_id)
        assert restored is not None
        return restored

    async def find(self, file_path: str | None = None, query: str | None = None, tags: Any = None,
                   strategy_type: str | None = None, limit: int = 10,
                   project: str | None = None) -> FindPatternsResult:
        """The current project's and the global patterns for a file and/or a task, all `limit` of them
        (see the module docstring for the ranking); `find_page` pages them for a model."""
        count = check.int_range(limit, "limit", 1, MAX_FIND_LIMIT)
        tag_filter = _tags(tags) or None
        strategy = check.optional_label(strategy_type, "strategy_type", max_chars=MAX_LABEL_CHARS)
        current = self.projects.current(project)
        path = normalize_path(self.projects.relative_path(file_path, current)) if file_path is not None else None
        text = check.content(query, MAX_QUERY_CHARS, field="query", setting=None) if query is not None else None
        in_scope = Scope(await self.projects.id_to_read(current), "project+global")

        relevance: dict[int, float] = {}
        rows: dict[int, Pattern] = {}
        vector: np.ndarray | None = None
        if text is not None:
            vector = await self.embedder.try_embed_query(text)
            hits = await repo.search(
                self.database, text=text, vector=vector, model=self.embedder.model if vector is not None else None,
                limit=max(count * 5, 50), tags=tag_filter, strategy_type=strategy, scope=in_scope,
                keyword_weight=keyword_weight(self.settings.embedding_provider))
            for rank, row in enumerate(hits):
                relevance[row.id] = 1.0 - rank / len(hits)
                rows[row.id] = row

        contexts: dict[int, ContextMatch] = {}
        of_project: set[int] = {i for i, row in rows.items() if row.project is not None}
        if path is not None:
            async with self.database.connection() as conn:
                candidates = await repo.candidates_for_path(conn, path_keys(path), tag_filter, strategy,
                                                            CANDIDATE_LIMIT, in_scope)
            for candidate_id, globs, projects_own, ignore_case in candidates:
                matched = match_contexts(globs, path, ignore_case=ignore_case)
                if matched.applies:
                    contexts[candidate_id] = matched
                    if projects_own:
                        of_project.add(candidate_id)

        if path is not None and text is None:
            ids = set(contexts)
        elif path is None and text is None:
            async with self.database.connection() as conn:
                listed = await repo.listing(conn, tag_filter, strategy, count, scope=in_scope)
            rows = {r.id: r for r in listed}
            ids = set(rows)
            of_project = {r.id for r in listed if r.project is not None}
        else:
            ids = set(relevance) | set(contexts)
        if text is not None and path is not None:
            relevance = await self._counted_for_the_file(relevance, contexts, text, vector)

        def context_score(pattern_id: int) -> float:
            match = contexts.get(pattern_id)
            return 0.0 if match is None else 0.5 + 0.5 * match.specificity

        # Applying patterns first, then by fit; of the same fit, the project's own before global ones.
        ranked = sorted(ids, key=lambda i: (i in contexts or path is None, context_score(i) + relevance.get(i, 0.0),
                                            i in of_project, i), reverse=True)[:count]
        missing = [i for i in ranked if i not in rows]
        if missing:
            async with self.database.connection() as conn:
                rows.update({r.id: r for r in await repo.get_many(conn, missing)})
        results = []
        for pattern_id in ranked:
            match = contexts.get(pattern_id)
            results.append(FoundPattern(
                **rows[pattern_id].model_dump(exclude={"source_path"}),
                score=round(context_score(pattern_id) + relevance.get(pattern_id, 0.0), 6),
                matched_contexts=match.matched if match else [],
            ))
        return FindPatternsResult(results=results)

    async def _counted_for_the_file(self, relevance: dict[int, float], contexts: dict[int, ContextMatch],
                                    text: str, vector: np.ndarray | None) -> dict[int, float]:
        """`relevance` without the query scores of applying patterns whose relevance is not real (see
        the module docstring): those keep their place in the file's order."""
        applying = [i for i in relevance if i in contexts]
        if not applying:
            return relevance
        model = self.embedder.model if vector is not None else None
        async with self.database.connection() as conn:
            evidence = await repo.query_evidence(conn, applying, text, vector, model)
        return {i: score for i, score in relevance.items()
                if i not in contexts or (i in evidence and real_relevance(evidence[i], self.query_floor))}

    async def get_many(self, pattern_ids: Sequence[int]) -> list[Pattern]:
        """The patterns among `pattern_ids` that still exist, in the order of `pattern_ids`."""
        if not pattern_ids:
            return []
        async with self.database.connection() as conn:
            found = {p.id: p for p in await repo.get_many(conn, pattern_ids)}
        return [found[i] for i in pattern_ids if i in found]

    async def for_every_path(self) -> list[Pattern]:
        """The current project's and the global patterns filed for every path (no globs, or a
        catch-all glob), the project's first: those that may apply to any file."""
        in_scope = Scope(await self.projects.id_to_read(self.projects.current()), "project+global")
        async with self.database.connection() as conn:
            candidates = await repo.candidates_for_path(conn, [CATCH_ALL_KEY], None, None, MAX_FIND_LIMIT, in_scope)
            rows = await repo.get_many(conn, [c[0] for c in candidates])
        return sorted(rows, key=lambda p: (p.project is None, p.id))

    async def find_page(self, file_path: str | None = None, query: str | None = None, tags: Any = None,
                        strategy_type: str | None = None, limit: int = 10, project: str | None = None,
                        cursor: str | None = None, *, session: str | None = None) -> FindPatternsResult:
        """The page of `find`'s ranking that `cursor` points to (the first without one), within
        MAX_RESPONSE_CHARS (services/paging.py). With a `session` (a model asking), the page's ids
        are recorded as that session's provenance."""
        current = self.projects.current(project)
        arguments = paging.call_arguments(cursor, "find_patterns", {  # before searching: a bad cursor costs nothing
            "file_path": file_path, "query": query, "tags": tags, "strategy_type": strategy_type, "limit": limit,
            "project": current.key if current else None})
        ranked = await self.find(file_path, query, tags, strategy_type, limit, project)
        page = paging.found_patterns_page(ranked.results, cursor, arguments, self.settings.max_response_chars)
        if session is not None:
            self.record_shown(session, [p.id for p in page.results])
        return page

    async def conventions_for(self, file_path: str, *, session: str | None = None) -> str:
        """The `conventions_for` prompt's message: the patterns that apply to `file_path`, most
        specific first, within MAX_RESPONSE_CHARS (the rest summarised). With a `session`, the ids it
        shows are recorded as that session's provenance (the message goes into the model's context)."""
        found = await self.find(file_path=file_path, limit=MAX_FIND_LIMIT)
        message, shown = paging.conventions_message(file_path, found.results, self.settings.max_response_chars,
                                                    complete=len(found.results) < MAX_FIND_LIMIT)
        if session is not None:
            self.record_shown(session, shown)
        return message

    def record_shown(self, session: str, pattern_ids: Sequence[int]) -> None:
        """Record patterns a model was shown (a page of results, of context files, a prompt) as the
        session's provenance."""
        self.provenance.record(session, pattern_ids=pattern_ids)

    async def all(self, tags: Any = None, strategy_type: str | None = None, limit: int = 100_000,
                  scope: ReadScope = "all", project: str | None = None) -> list[Pattern]:
        """Patterns in a stable reading order; every project's by default."""
        in_scope = await self.projects.read_scope(scope, project)
        async with self.database.connection() as conn:
            return await repo.listing(conn, _tags(tags) or None, strategy_type, limit, scope=in_scope)

    async def select(self, paths: Sequence[str] | None, query: str | None, tags: Any,
                     max_patterns: int, project: str | None = None) -> list[Pattern]:
        """The patterns a context file should hold: the current project's and the global ones that
        apply to any of `paths` and match `query` and `tags`."""
        if paths is not None and (isinstance(paths, str) or not isinstance(paths, list | tuple)):
            raise InvalidInputError("`paths` must be a list of file paths relative to the repository root.")
        if not paths and query is None:
            return await self.all(tags, None, max_patterns, scope="project", project=project)
        chosen: dict[int, float] = {}
        for path in paths or [None]:
            found = await self.find(file_path=path, query=query, tags=tags, limit=min(max_patterns, MAX_FIND_LIMIT),
                                    project=project)
            for hit in found.results:
                chosen[hit.id] = max(chosen.get(hit.id, 0.0), hit.score)
        ids = [i for i, _ in sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0]))][:max_patterns]
        if not ids:
            return []
        async with self.database.connection() as conn:
            return await repo.listing(conn, None, None, len(ids), ids=ids)
