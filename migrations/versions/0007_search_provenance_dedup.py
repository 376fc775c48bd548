"""full-text search, embedding provenance, de-duplication, pattern titles, HNSW indexes

- `content_tsv`: generated tsvector + GIN on memory_shards and eng_patterns (title weighted A).
- `embedding_model`: which model made each vector; a NULL `embedding` marks a row waiting for
  one. Vectors that exist before this revision are attributed to EMBEDDING_MODEL, the setting
  the seed used to make them.
- `content_hash` (sha256 of the content, hex) unique per user. Rows that already duplicate an
  earlier row's content keep a NULL hash: nothing stored is deleted by this migration.
- `(user_id, id)` replaces the user_id BTree (it also serves cursor pagination).
- HNSW (cosine) on both vector columns, unless IVFFlat was chosen (PGVECTOR_ENABLE_IVFFLAT).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

from mcp_server.db.migration_env import migration_settings

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEMORY_TSV = "to_tsvector('english'::regconfig, content)"
PATTERN_TSV = (
    "setweight(to_tsvector('english'::regconfig, COALESCE(title, ''::text)), 'A'::\"char\") || "
    "setweight(to_tsvector('english'::regconfig, content), 'B'::\"char\")"
)


def upgrade() -> None:
    settings = migration_settings()
    # HNSW builds are much faster when the graph fits in memory; only this transaction is affected.
    op.execute("SET LOCAL maintenance_work_mem = '512MB'")

    # memory_shards
    op.execute(
        f"ALTER TABLE memory_shards ADD COLUMN IF NOT EXISTS content_tsv tsvector "
        f"GENERATED ALWAYS AS ({MEMORY_TSV}) STORED"
    )
    op.execute("ALTER TABLE memory_shards ADD COLUMN IF NOT EXISTS embedding_model TEXT")
    op.execute("ALTER TABLE memory_shards ADD COLUMN IF NOT EXISTS content_hash TEXT")
    op.execute(
        "UPDATE memory_shards SET embedding_model = "
        f"{_literal(settings.embedding_model)} WHERE embedding IS NOT NULL AND embedding_model IS NULL"
    )
    op.execute(
        """
        UPDATE memory_shards AS m SET content_hash = first.hash
        FROM (
            SELECT DISTINCT ON (user_id, hash) id, hash
            FROM (SELECT id, user_id, encode(sha256(convert_to(content, 'UTF8')), 'hex') AS hash
                  FROM memory_shards WHERE content_hash IS NULL) AS hashed
            ORDER BY user_id, hash, id
        ) AS first
        WHERE m.id = first.id
          AND NOT EXISTS (SELECT 1 FROM memory_shards o
                          WHERE o.user_id = m.user_id AND o.content_hash = first.hash)
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS uq_memory_shards_user_content_hash "
        "ON memory_shards (user_id, content_hash)"
    )
    op.execute("CREATE INDEX IF NOT EXISTS ix_memory_shards_content_tsv ON memory_shards USING gin (content_tsv)")
    op.execute("CREATE INDEX IF NOT EXISTS ix_memory_shards_user_id_id ON memory_shards (user_id, id)")
    op.execute("DROP INDEX IF EXISTS ix_memory_shards_user_id")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_memory_shards_awaiting_embedding ON memory_shards (id) "
        "WHERE embedding IS NULL"
    )

    # eng_patterns
    op.execute("ALTER TABLE eng_patterns ADD COLUMN IF NOT EXISTS title TEXT")
    op.execute("ALTER TABLE eng_patterns ADD COLUMN IF NOT EXISTS embedding_model TEXT")
    op.execute(
        f"ALTER TABLE eng_patterns ADD COLUMN IF NOT EXISTS content_tsv tsvector "
        f"GENERATED ALWAYS AS ({PATTERN_TSV}) STORED"
    )
    op.execute(
        "UPDATE eng_patterns SET embedding_model = "
        f"{_literal(settings.embedding_model)} WHERE embedding IS NOT NULL AND embedding_model IS NULL"
    )
    op.execute("CREATE INDEX IF NOT EXISTS ix_eng_patterns_content_tsv ON eng_patterns USING gin (content_tsv)")

    if not settings.pgvector_enable_ivfflat:
        for table in ("memory_shards", "eng_patterns"):
            op.execute(
                f"CREATE INDEX IF NOT EXISTS ix_{table}_embedding_hnsw ON {table} "
                "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
            )


def downgrade() -> None:
    for table in ("memory_shards", "eng_patterns"):
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_embedding_hnsw")
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_content_tsv")
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS content_tsv")
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS embedding_model")
    op.execute("ALTER TABLE eng_patterns DROP COLUMN IF EXISTS title")
    op.execute("DROP INDEX IF EXISTS ix_memory_shards_awaiting_embedding")
    op.execute("CREATE INDEX IF NOT EXISTS ix_memory_shards_user_id ON memory_shards (user_id)")
    op.execute("DROP INDEX IF EXISTS ix_memory_shards_user_id_id")
    op.execute("DROP INDEX IF EXISTS uq_memory_shards_user_content_hash")
    op.execute("ALTER TABLE memory_shards DROP COLUMN IF EXISTS content_hash")


def _literal(value: str) -> str:
    """A SQL string literal (the model name comes from our own settings, quoted anyway)."""
    return "'" + value.replace("'", "''") + "'"
