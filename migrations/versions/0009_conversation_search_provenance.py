"""raw_conversations: full-text search, provenance ids, redaction count

- `content_tsv`: generated from the string values of messages and response
  (`jsonb_to_tsvector`, so JSON keys like "role" are not indexed) + GIN.
- `memory_ids`, `pattern_ids`: what this server returned in the same MCP session since the
  previous logged exchange (what was in the model's context).
- `redactions`: how many secrets were replaced before storing.
- (user_id, request_id) and (user_id, created_at) indexes: idempotent logging and listing.
  Idempotency is enforced by the application under a transaction lock, not a unique index, so
  that adopting a database that already holds duplicate request ids cannot fail.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TSV = (
    "jsonb_to_tsvector('english'::regconfig, messages, '[\"string\"]'::jsonb) || "
    "jsonb_to_tsvector('english'::regconfig, COALESCE(response, '{}'::jsonb), '[\"string\"]'::jsonb)"
)


def upgrade() -> None:
    op.execute(
        f"ALTER TABLE raw_conversations ADD COLUMN IF NOT EXISTS content_tsv tsvector "
        f"GENERATED ALWAYS AS ({TSV}) STORED"
    )
    op.execute("ALTER TABLE raw_conversations ADD COLUMN IF NOT EXISTS memory_ids BIGINT[] NOT NULL DEFAULT '{}'")
    op.execute("ALTER TABLE raw_conversations ADD COLUMN IF NOT EXISTS pattern_ids BIGINT[] NOT NULL DEFAULT '{}'")
    op.execute("ALTER TABLE raw_conversations ADD COLUMN IF NOT EXISTS redactions INTEGER NOT NULL DEFAULT 0")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_raw_conversations_content_tsv ON raw_conversations USING gin (content_tsv)"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_raw_conversations_user_request ON raw_conversations (user_id, request_id)"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_raw_conversations_user_created ON raw_conversations (user_id, created_at DESC)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_raw_conversations_user_created")
    op.execute("DROP INDEX IF EXISTS ix_raw_conversations_user_request")
    op.execute("DROP INDEX IF EXISTS ix_raw_conversations_content_tsv")
    for column in ("redactions", "pattern_ids", "memory_ids", "content_tsv"):
        op.execute(f"ALTER TABLE raw_conversations DROP COLUMN IF EXISTS {column}")
