"""aletheia_rows_share(regclass, text, text): the share of a table's rows a user owns with a model

pgvector's iterative index scans keep a filtered HNSW search going until it has `limit` rows,
at a price: ~10% of the scan (0.4-0.6 ms at 100k memories) even when no row is filtered out.
Recall turns them off when the planner's statistics say nearly every row is eligible (one user,
one embedding model, no source or metadata filter; db/planner_stats.py `TableStats.hnsw_scan_mode`).

PostgreSQL hides pg_stats rows of tables with row-level security from roles subject to it, so
this SECURITY DEFINER function returns one number: the estimated share of rows whose user_id is
`acting_user` (any user when NULL) and whose embedding_model is `model`, from the columns' most
common values. It is 0 when the table was never analyzed or the value is not a common one, so
an unknown share always keeps the iterative scans. Our three tables only.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION aletheia_rows_share(tbl regclass, acting_user text, model text)
        RETURNS real
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            WITH common AS (
                SELECT s.attname, v.value, v.share
                FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                CROSS JOIN LATERAL unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS v(value, share)
                WHERE c.oid = tbl AND c.relname IN ('memory_shards', 'eng_patterns', 'raw_conversations')
                  AND s.attname IN ('user_id', 'embedding_model')
            )
            SELECT (CASE WHEN acting_user IS NULL THEN 1
                         ELSE COALESCE((SELECT share FROM common WHERE attname = 'user_id' AND value = acting_user), 0)
                    END)
                 * COALESCE((SELECT share FROM common WHERE attname = 'embedding_model' AND value = model), 0)
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION aletheia_rows_share(regclass, text, text) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION aletheia_rows_share(regclass, text, text) TO aletheia_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS aletheia_rows_share(regclass, text, text)")
