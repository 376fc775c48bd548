"""What a coding agent's hooks get: context at session start, memories for a prompt, a file's
conventions, and the turn logged when the agent stops (`aletheia-mcp hook EVENT`).

`HookService.handle` is the one entry point. Each event acts in the project of the git repository
holding the agent's working directory (the same detection as start-up, per event; outside any
repository, global rows only), as the acting user. What each session was given is stored
(db/hook_injections.py, migration 0022), because the hooks' background process may restart within
a session: an item is given to a session once (after a compaction, again), and the Stop hook logs
the turn with the ids given during it as its provenance, as `log_exchange` records what recall
showed. Hooks of one session may run at once (parallel tool calls): reading what the session has
and recording what it gets happen under the session's lock.

The parts: hook_context.py fits the items into HOOK_CONTEXT_CHARS, relevance_floors.py says how
similar a memory must be to a prompt, hook_turns.py shapes a turn as an exchange.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from mcp_server.db import hook_injections as given_rows
from mcp_server.db.database import Database
from mcp_server.db.engine import Connection
from mcp_server.db.hook_injections import Given, SessionKey
from mcp_server.errors import InvalidInputError
from mcp_server.identity import current_user_id
from mcp_server.rules.globs import normalize_globs
from mcp_server.rules.render import attach_mode
from mcp_server.schemas import MAX_FIND_LIMIT, MAX_QUERY_CHARS, FoundPattern, Pattern
from mcp_server.services.conversations import ConversationService
from mcp_server.services.hook_context import DATA_NOTICE as DATA_NOTICE  # (re-exported: what every text starts with)
from mcp_server.services.hook_context import Fitted, Item, fit_items
from mcp_server.services.hook_events import (
    FileTouch,
    HookEvent,
    HookResult,
    PromptSubmit,
    SessionStart,
    TurnEnd,
)
from mcp_server.services.hook_turns import latency_ms, turn_exchange, turn_request_id
from mcp_server.services.memory import MemoryService
from mcp_server.services.patterns import PatternService
from mcp_server.services.projects import Project, ProjectService, default_project
from mcp_server.services.relevance_floors import KEYWORD_TERMS, relevance_floor, sharing_a_word
from mcp_server.settings import Settings

# A session resumed after this long gets its items again (the rows are purged at session starts).
SESSION_MEMORY = timedelta(days=30)
# Globs that match every file: a pattern with one of them applies everywhere, like one without globs.
CATCH_ALL_GLOBS = frozenset({"*", "**", "**/*", "/**", "/**/*"})
NEWEST_MEMORIES = 50  # memories read for a session start (the budget fits far fewer)


def always_applies(pattern: Pattern) -> bool:
    """A pattern for every file: no globs (and not attached only on request), or a catch-all glob."""
    if attach_mode(pattern.target_contexts, pattern.metadata) == "always":
        return True
    return any(glob in CATCH_ALL_GLOBS for glob in normalize_globs(pattern.target_contexts))


def _pattern_text(pattern: Pattern | FoundPattern) -> str:
    return f"{pattern.title}: {pattern.content}" if pattern.title else pattern.content


def _rewrite_note(path: str) -> str:
    return (f"\n\nThis project has conventions for the new file {path} (above): write it again following them. "
            "(aletheia-mcp refuses a new file's first write once, to show them.)")


class HookService:
    def __init__(self, database: Database, settings: Settings, projects: ProjectService, memories: MemoryService,
                 patterns: PatternService, conversations: ConversationService) -> None:
        self.database = database
        self.settings = settings
        self.projects = projects
        self.memories = memories
        self.patterns = patterns
        self.conversations = conversations

    async def handle(self, event: HookEvent) -> HookResult:
        """Answer one hook, in the project of the repository holding the event's working directory."""
        project = default_project(self.settings, Path(event.session.cwd))
        session = SessionKey(current_user_id(self.settings.user_id), event.session.client, event.session.session_id)
        with self.projects.working_in(project):
            if isinstance(event, SessionStart):
                return await self._session_start(event, session)
            if isinstance(event, PromptSubmit):
                return await self._prompt(event, session)
            if isinstance(event, FileTouch):
                return await self._file(event, session, project)
            return await self._turn_end(event, session, project)

    @asynccontextmanager
    async def _session_locked(self, session: SessionKey) -> AsyncIterator[tuple[Connection, Given]]:
        """A transaction holding the session's lock, and what the session was given so far. Only
        this connection's work happens inside (no embedding, no other connection), so a full pool
        cannot wait on itself."""
        async with self.database.connection() as conn, conn.transaction():
            await given_rows.lock_session(conn, session)
            yield conn, await given_rows.given(conn, session)

    async def _given(self, session: SessionKey) -> Given:
        async with self.database.connection() as conn:
            return await given_rows.given(conn, session)

    @staticmethod
    async def _record(conn: Connection, session: SessionKey, event: str, fitted: Fitted,
                      prompt_id: str | None) -> HookResult:
        await given_rows.record(conn, session, event, "pattern", fitted.pattern_ids, prompt_id=prompt_id)
        await given_rows.record(conn, session, event, "memory", fitted.memory_ids, prompt_id=prompt_id)
        return HookResult(context=fitted.text, memory_ids=fitted.memory_ids, pattern_ids=fitted.pattern_ids)

    # --- session start ----------------------------------------------------------------------

    async def _session_start(self, event: SessionStart, session: SessionKey) -> HookResult:
        async with self.database.connection() as conn:
            if event.source == "startup":
                await given_rows.purge_older_than(conn, session.user_id, datetime.now(UTC) - SESSION_MEMORY)
            before = await given_rows.given(conn, session)
        items = [Item("pattern", p.id, _pattern_text(p)) for p in await self.patterns.for_every_path()
                 if always_applies(p)]
        if event.source == "compact":  # the compaction dropped what earlier hooks added: add it again
            items += await self._patterns_by_id(before.pattern_ids)
            items += [Item("memory", m.id, m.content) for m in await self.memories.get_many(before.memory_ids)]
        items += [Item("memory", m.id, m.content) for m in (await self.memories.list(limit=NEWEST_MEMORIES)).items]
        items = _unique(items)
        async with self._session_locked(session) as (conn, now):
            if event.source == "resume":  # the resumed transcript still holds what the session was given
                items = _not_given(items, now)
            fitted = fit_items("Conventions that apply to every file of this project, then memories, newest first:",
                               items, self.settings.hook_context_chars)
            # A session start belongs to no prompt: its rows count in the next turn.
            return HookResult() if fitted is None else await self._record(conn, session, "session-start", fitted, None)

    async def _patterns_by_id(self, ids: Sequence[int]) -> list[Item]:
        return [Item("pattern", p.id, _pattern_text(p)) for p in await self.patterns.get_many(ids)]

    # --- prompt -----------------------------------------------------------------------------

    async def _prompt(self, event: PromptSubmit, session: SessionKey) -> HookResult:
        text = event.prompt.strip()[:MAX_QUERY_CHARS]  # (the prompt is the query)
        if not text or self.settings.hook_prompt_memories == 0:
            return HookResult()
        floor = relevance_floor(self.settings, self.settings.embedding_provider, self.memories.embedder.model)
        before = await self._given(session)
        hits, mode = await self.memories.relevant(text, self.settings.hook_prompt_memories, floor.similarity,
                                                  before.memory_ids, keyword_terms=KEYWORD_TERMS)
        if floor.shared_word and mode != "lexical":
            hits = sharing_a_word(text, hits)
        items = [Item("memory", h.id, h.content) for h in hits]
        async with self._session_locked(session) as (conn, now):
            # Another hook of the session may have given some of them since `before` was read.
            fitted = fit_items("Memories that may be relevant to this prompt:", _not_given(items, now),
                               self.settings.hook_context_chars)
            return HookResult() if fitted is None else await self._record(conn, session, "prompt", fitted,
                                                                          event.prompt_id)

    # --- file -------------------------------------------------------------------------------

    async def _file(self, event: FileTouch, session: SessionKey, project: Project | None) -> HookResult:
        path = self._repository_path(event.file_path, event.session.cwd, project)
        if path is None:
            return HookResult()
        found = await self.patterns.find(file_path=path, limit=MAX_FIND_LIMIT)
        items = [Item("pattern", p.id, _pattern_text(p)) for p in found.results]
        heading = f"Conventions for {path}:"
        budget = self.settings.hook_context_chars
        async with self._session_locked(session) as (conn, now):
            new = _not_given(items, now)
            if not new:
                return HookResult()
            if event.action == "write" and event.new_file and path not in now.denied_paths:
                # A new file is written without being read first, and the context a PreToolUse hook
                # adds reaches Claude Code's model only after the write: refuse the first write once,
                # with the conventions as the reason, so that the retry is written by them. The
                # closing sentence is part of the budget: the client caps what it is given.
                note = _rewrite_note(path)
                fitted = fit_items(heading, new, budget - len(note))
                assert fitted is not None
                await given_rows.record(conn, session, "file", "pattern", fitted.pattern_ids, prompt_id=event.prompt_id)
                await given_rows.record(conn, session, "file", "denied-write", [], file_path=path,
                                        prompt_id=event.prompt_id)
                return HookResult(deny_reason=fitted.text + note, pattern_ids=fitted.pattern_ids)
            fitted = fit_items(heading, new, budget)
            assert fitted is not None
            return await self._record(conn, session, "file", fitted, event.prompt_id)

    def _repository_path(self, file_path: str, cwd: str, project: Project | None) -> str | None:
        """`file_path` relative to the project's root (outside any repository: to the working
        directory); None for a file outside it, which no pattern of the project is about."""
        absolute = Path(cwd, file_path)
        if project is not None and project.root is not None:
            try:
                return self.projects.relative_path(absolute.as_posix(), project)
            except InvalidInputError:
                return None
        try:
            return absolute.resolve().relative_to(Path(cwd).resolve()).as_posix()
        except (ValueError, OSError):
            return None

    # --- turn end ---------------------------------------------------------------------------

    async def _turn_end(self, event: TurnEnd, session: SessionKey, project: Project | None) -> HookResult:
        turn = event.turn
        prompt_id = event.prompt_id or (turn.prompt_id if turn else None)
        if turn is None:
            # Not logged (the transcript could not be read), but the turn is over: what was given
            # during it must not count in the next one.
            async with self.database.connection() as conn:
                await given_rows.close_turn(conn, session, prompt_id, exchange_id=None)
            return HookResult()
        async with self.database.connection() as conn:
            injected = await given_rows.turn_rows(conn, session, prompt_id)
        messages, response, redactions = await anyio.to_thread.run_sync(
            turn_exchange, turn, self.conversations.redactor, self.settings.max_exchange_bytes)
        logged = await self.conversations.store_prepared(
            messages, response, redactions=redactions, provider=session.client, model=turn.model,
            request_id=turn_request_id(session.client, session.session_id, prompt_id, turn),
            project=project, memory_ids=injected.memory_ids, pattern_ids=injected.pattern_ids,
            latency_ms=latency_ms(turn))
        if not logged.created:  # a repeated Stop: the first one closed the turn
            return HookResult(logged_exchange_id=logged.id)
        if injected.last_row is not None:
            async with self.database.connection() as conn:
                await given_rows.close_turn(conn, session, prompt_id, exchange_id=logged.id,
                                            last_row=injected.last_row)
        return HookResult(memory_ids=injected.memory_ids, pattern_ids=injected.pattern_ids,
                          logged_exchange_id=logged.id)


def _not_given(items: Sequence[Item], given: Given) -> list[Item]:
    return [i for i in items if i.id not in (given.memory_ids if i.kind == "memory" else given.pattern_ids)]


def _unique(items: Sequence[Item]) -> list[Item]:
    seen: set[tuple[str, int]] = set()
    unique = []
    for item in items:
        if (item.kind, item.id) not in seen:
            seen.add((item.kind, item.id))
            unique.append(item)
    return unique
