"""`server_status`: what a person needs to know to trust (or fix) this server."""

from __future__ import annotations

from mcp_server import __version__
from mcp_server.db import memories
from mcp_server.db.database import Database
from mcp_server.db.introspect import pgvector_status, schema_revision, server_version, table_counts
from mcp_server.db.schema_check import shipped_head
from mcp_server.identity import current_user_id
from mcp_server.schemas import DatabaseStatus, ServerStatus, TableCounts
from mcp_server.services.embedding_runtime import EmbedderRuntime
from mcp_server.services.projects import ProjectService
from mcp_server.settings import Settings


class StatusService:
    def __init__(self, database: Database, embedder: EmbedderRuntime, settings: Settings,
                 projects: ProjectService) -> None:
        self.database = database
        self.embedder = embedder
        self.settings = settings
        self.projects = projects

    async def report(self) -> ServerStatus:
        """Version, project, database (never a password), schema, pgvector, embedder and row counts."""
        user_id = current_user_id(self.settings.user_id)
        project = self.projects.current()
        async with self.database.connection() as conn:
            version = await server_version(conn)
            vector = await pgvector_status(conn)
            revision = await schema_revision(conn)
            total, waiting = await memories.counts(conn, user_id, self.embedder.model)
            other = await table_counts(conn, user_id, self.embedder.model)
        target = self.database.target
        location = str(self.settings.pgdata_dir) if target.embedded else target.display
        return ServerStatus(
            version=__version__,
            user_id=user_id,
            project=project.status() if project else None,
            database=DatabaseStatus(kind="embedded" if target.embedded else "external", location=location,
                                    server_version=version, pgvector_version=vector.installed_version,
                                    schema_revision=revision, schema_head=shipped_head()),
            embedder=self.embedder.status(),
            counts=TableCounts(memories=total, memories_awaiting_embedding=waiting, **other),
        )
