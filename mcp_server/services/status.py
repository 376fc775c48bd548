"""`server_status`: what a person needs to know to trust (or fix) this server.

It answers while the database is down too (the connection's state, attempts, next retry and
last error come from db.database.ConnectionHealth). Local filesystem paths (the data directory,
the repository's root) are shown only to the server's own user (stdio, or an HTTP token of
ALETHEIA_USER_ID): other token holders learn nothing about the host's files.
"""

from __future__ import annotations

import re

from mcp_server import __version__
from mcp_server.db import memories
from mcp_server.db.database import Database
from mcp_server.db.introspect import pgvector_status, schema_revision, server_version, table_counts
from mcp_server.db.schema_check import shipped_head
from mcp_server.errors import DatabaseUnavailableError
from mcp_server.identity import current_user_id
from mcp_server.schemas import DatabaseStatus, ServerStatus, TableCounts
from mcp_server.services.embedding_runtime import EmbedderRuntime
from mcp_server.services.projects import ProjectService
from mcp_server.settings import Settings

# An absolute or home-relative POSIX path inside a message (not the path part of a URL: that
# follows a host name, and `//` follows the scheme).
_LOCAL_PATH = re.compile(r"(?<![\w.:/~-])~?/(?!/)(?:[^\s'\"`,;()]*[^\s'\"`,;():.])?")


def without_local_paths(text: str | None) -> str | None:
    """`text` with every filesystem path replaced by `<path>` (for users other than the server's own)."""
    return _LOCAL_PATH.sub("<path>", text) if text else text


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
        local = user_id == self.settings.user_id
        project = self.projects.current()
        version = vector_version = revision = None
        counts = None
        if self.database.health.available:  # (while it is not, the supervisor is already retrying)
            try:
                async with self.database.connection() as conn:
                    version = await server_version(conn)
                    vector_version = (await pgvector_status(conn)).installed_version
                    revision = await schema_revision(conn)
                    total, waiting = await memories.counts(conn, user_id, self.embedder.model)
                    counts = TableCounts(memories=total, memories_awaiting_embedding=waiting,
                                         **await table_counts(conn, user_id, self.embedder.model))
            except DatabaseUnavailableError:
                pass  # the connection's state below says what happened
        target = self.database.target
        # The data directory only for the server's own user; a URL (never with its password) for all.
        location = target.display if not target.embedded else str(self.settings.pgdata_dir) if local else None
        project_status = project.status() if project else None
        connection = self.database.health.status()
        embedder = self.embedder.status()
        if not local:  # messages may quote a path (the model cache, a socket directory)
            if project_status is not None:
                project_status = project_status.model_copy(update={"root": None})
            connection = connection.model_copy(update={"last_error": without_local_paths(connection.last_error)})
            embedder = embedder.model_copy(update={"detail": without_local_paths(embedder.detail)})
        return ServerStatus(
            version=__version__,
            user_id=user_id,
            project=project_status,
            database=DatabaseStatus(kind="embedded" if target.embedded else "external", location=location,
                                    connection=connection,
                                    server_version=version, pgvector_version=vector_version,
                                    schema_revision=revision, schema_head=shipped_head()),
            embedder=embedder,
            counts=counts,
        )
