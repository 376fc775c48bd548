"""The composition root: the running application's database, embedder and services, opened and
closed as one.

The MCP server's lifespan and the CLI commands both use `open_app`, so they share one start-up
path: find the project (services.projects.default_project), bring the database to head and open
the pool (db.database.open_database), build the services, run the start-up job (retention
purge), and start the background tasks: the database's reconnection supervisor (db.database) and
the embedder, with the vector backfill scheduled for when it is ready. Nothing else here does
work of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from mcp_server.db.database import Database, open_database
from mcp_server.db.embedded import release_embedded_server
from mcp_server.embeddings import Embedder
from mcp_server.redact import redactor_from_settings
from mcp_server.services.conversations import ConversationService
from mcp_server.services.embedding_runtime import EmbedderRuntime
from mcp_server.services.hooks import HookService
from mcp_server.services.memory import MemoryService
from mcp_server.services.patterns import PatternService
from mcp_server.services.projects import Project, ProjectService, default_project
from mcp_server.services.provenance import ProvenanceTracker
from mcp_server.services.reembed import ReembedService
from mcp_server.services.replay import ReplayService
from mcp_server.services.rule_files import RuleFileService
from mcp_server.services.status import StatusService
from mcp_server.settings import Settings


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    database: Database
    embedder: EmbedderRuntime
    memories: MemoryService
    patterns: PatternService
    rule_files: RuleFileService
    conversations: ConversationService
    vectors: ReembedService
    status: StatusService
    projects: ProjectService
    replay: ReplayService  # conversations replay: re-send logged requests, compare the answers
    hooks: HookService  # `aletheia-mcp hook EVENT`: what coding agents' hooks get, and their turns logged

    @classmethod
    def build(cls, settings: Settings, database: Database, embedder: EmbedderRuntime,
              project: Project | None) -> AppContext:
        provenance = ProvenanceTracker()  # what this process showed each MCP session (services record it)
        # One for every write path (exchanges, memories, patterns), built once: an invalid
        # REDACT_EXTRA_PATTERNS stops start-up with a clear message.
        redactor = redactor_from_settings(settings.redact_secrets, settings.redact_extra_patterns)
        projects = ProjectService(database, project)
        vectors = ReembedService(database, embedder, settings)
        patterns = PatternService(database, embedder, settings, provenance, projects, redactor)
        conversations = ConversationService(database, settings, provenance, projects, redactor)
        memories = MemoryService(database, embedder, settings, provenance, vectors, projects, redactor)
        return cls(
            settings=settings, database=database, embedder=embedder,
            memories=memories,
            patterns=patterns,
            rule_files=RuleFileService(patterns, settings, projects),
            conversations=conversations,
            vectors=vectors,
            status=StatusService(database, embedder, settings, projects),
            projects=projects,
            replay=ReplayService(conversations, database, settings),
            hooks=HookService(database, settings, projects, memories, patterns, conversations),
        )


@asynccontextmanager
async def open_app(
    settings: Settings, *, embedder: Embedder | None = None, load_in_background: bool = True
) -> AsyncIterator[AppContext]:
    """The application; with `load_in_background` the embedder loads (and rows waiting for a vector
    get one) in the background, else the caller loads it when it needs it. Its project is
    ALETHEIA_PROJECT, else the git repository of the working directory."""
    project = default_project(settings)
    database = await open_database(settings)
    try:
        runtime = EmbedderRuntime(settings, embedder)
        app = AppContext.build(settings, database, runtime, project)
        await app.conversations.purge_expired()
    except BaseException:
        await database.close()
        raise
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(database.supervise)  # reconnects (restarting the embedded server) after a loss
            if load_in_background:
                runtime.on_ready.append(app.vectors.backfill)
                tasks.start_soon(runtime.run)
            yield app
            tasks.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await runtime.aclose()
            await database.close()


def release_database(settings: Settings) -> None:
    """Drop this process's handle on the embedded PostgreSQL (pgserver stops it when no other
    process holds one); nothing to do with DATABASE_URL."""
    if settings.database_url is None:
        release_embedded_server(settings.pgdata_dir)
