"""aletheia_refresh_after_bulk_write(regclass, bigint): statistics and GIN upkeep after bulk writes

Search plans depend on the planner's statistics. Right after a bulk write they are missing or
stale until autovacuum gets to the table (up to a minute later, never if the embedded server
stops first): 10,000 imported patterns that were never analyzed made find_patterns rank every
vector by a sequential scan (37 ms instead of 4 ms), and TableStats (db/planner_stats.py) saw every word
as rare. Bulk writes also leave GIN's pending list (up to 4 MB of unsorted entries, which every
full-text search reads through: ~1 ms at 300 pages) behind.

Imports and vector backfills call this function when they finish. It runs ANALYZE when the
write changed more than a tenth of the rows (autovacuum's own rule, applied at once), and flushes
the table's GIN pending lists. Both need the table's owner; the function is SECURITY DEFINER,
works on our three tables only, and returns no data.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION aletheia_refresh_after_bulk_write(tbl regclass, written bigint)
        RETURNS boolean
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            estimated_rows real;
            gin_index regclass;
            analyzed boolean := false;
        BEGIN
            SELECT c.reltuples INTO estimated_rows FROM pg_class c
            WHERE c.oid = tbl AND c.relname IN ('memory_shards', 'eng_patterns', 'raw_conversations');
            IF NOT FOUND THEN
                RAISE EXCEPTION 'aletheia_refresh_after_bulk_write: % is not an aletheia table', tbl;
            END IF;
            -- reltuples is -1 until the table is first analyzed or vacuumed.
            IF estimated_rows < 0 OR written > 0.1 * estimated_rows THEN
                EXECUTE format('ANALYZE %s', tbl);
                analyzed := true;
            END IF;
            FOR gin_index IN
                SELECT i.indexrelid::regclass FROM pg_index i
                JOIN pg_class ic ON ic.oid = i.indexrelid
                JOIN pg_am am ON am.oid = ic.relam
                WHERE i.indrelid = tbl AND am.amname = 'gin'
            LOOP
                PERFORM gin_clean_pending_list(gin_index);
            END LOOP;
            RETURN analyzed;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION aletheia_refresh_after_bulk_write(regclass, bigint) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION aletheia_refresh_after_bulk_write(regclass, bigint) TO aletheia_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS aletheia_refresh_after_bulk_write(regclass, bigint)")
