"""eng_patterns: context keys for glob candidates, source path for re-import identity

- `context_keys` TEXT[] (GIN): one key per target glob (see mcp_server/rules/globs.py) so that
  find_patterns(file_path) checks only candidate patterns instead of every row.
- `source_path`: the file a pattern was imported from; (source_path, title) is its identity,
  so re-importing the same files updates patterns instead of duplicating them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mcp_server.rules.globs import context_keys

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE eng_patterns ADD COLUMN IF NOT EXISTS context_keys TEXT[] NOT NULL DEFAULT '{*}'::text[]")
    op.execute("ALTER TABLE eng_patterns ADD COLUMN IF NOT EXISTS source_path TEXT")
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, target_contexts FROM eng_patterns")).all()
    for row_id, globs in rows:
        bind.execute(sa.text("UPDATE eng_patterns SET context_keys = :keys WHERE id = :id"),
                     {"keys": context_keys(list(globs or [])), "id": row_id})
    op.execute("CREATE INDEX IF NOT EXISTS ix_eng_patterns_context_keys ON eng_patterns USING gin (context_keys)")
    op.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS uq_eng_patterns_source ON eng_patterns (source_path, (COALESCE(title, '')))"
        " WHERE source_path IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS uq_eng_patterns_source")
    op.execute("DROP INDEX IF EXISTS ix_eng_patterns_context_keys")
    op.execute("ALTER TABLE eng_patterns DROP COLUMN IF EXISTS source_path")
    op.execute("ALTER TABLE eng_patterns DROP COLUMN IF EXISTS context_keys")
