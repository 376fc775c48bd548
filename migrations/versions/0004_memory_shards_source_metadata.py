"""memory_shards.source and .metadata; BTree on user_id; GIN on metadata (idempotent)

Revision ID: 0004
Revises: 0003
Create Date: 2024-01-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE memory_shards ADD COLUMN IF NOT EXISTS source TEXT")
    op.execute("ALTER TABLE memory_shards ADD COLUMN IF NOT EXISTS metadata JSONB NOT NULL DEFAULT '{}'::jsonb")
    op.execute("CREATE INDEX IF NOT EXISTS ix_memory_shards_user_id ON memory_shards (user_id)")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_memory_shards_metadata ON memory_shards USING gin (metadata jsonb_path_ops)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_memory_shards_metadata")
    op.execute("DROP INDEX IF EXISTS ix_memory_shards_user_id")
    op.execute("ALTER TABLE memory_shards DROP COLUMN IF EXISTS metadata")
    op.execute("ALTER TABLE memory_shards DROP COLUMN IF EXISTS source")
