"""optional IVFFlat index on memory_shards.embedding (PGVECTOR_ENABLE_IVFFLAT)

IVFFlat clusters the rows that exist when the index is built; built on an empty table its
lists are meaningless and recall is poor. So it is opt-in (default off) and meant for a table
that was bulk-loaded first. By default revision 0007 builds an HNSW index instead, which needs
no training data and keeps its recall as rows arrive.

Revision ID: 0003
Revises: 0002
Create Date: 2024-01-03
"""

from collections.abc import Sequence

from alembic import op

from mcp_server.db.migration_env import migration_settings

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    settings = migration_settings()
    if settings.pgvector_enable_ivfflat:
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_memory_shards_embedding_ivfflat ON memory_shards "
            f"USING ivfflat (embedding vector_cosine_ops) WITH (lists = {int(settings.pgvector_ivfflat_lists)})"
        )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_memory_shards_embedding_ivfflat")
