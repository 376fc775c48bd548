"""aletheia_term_shares(regclass): common-lexeme shares of a table's content_tsv for the app role

Hybrid search asks GIN only for a query's uncommon lexemes (db/planner_stats.py TableStats.rare_terms), reading
how common each lexeme is from the planner's statistics. PostgreSQL hides pg_stats rows of
tables with row-level security from roles subject to it, so this SECURITY DEFINER function
returns just those shares (aggregate frequencies of the most common words, no row contents),
for our three tables only.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION aletheia_term_shares(tbl regclass)
        RETURNS TABLE (lexeme text, share real)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT e.lexeme, e.share
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = 'content_tsv'
            CROSS JOIN LATERAL unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs)
                 AS e(lexeme, share)
            WHERE c.oid = tbl AND c.relname IN ('memory_shards', 'eng_patterns', 'raw_conversations')
              AND e.lexeme IS NOT NULL
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION aletheia_term_shares(regclass) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION aletheia_term_shares(regclass) TO aletheia_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS aletheia_term_shares(regclass)")
