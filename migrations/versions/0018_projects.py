"""projects: memories, patterns and exchanges belong to the repository they came from

- `projects` (key, display name, created): a repository, keyed by its normalised origin remote
  (github.com/org/repo) or its root path. Shared by every user, like patterns: projects
  organise rows, users isolate them (row-level security).
- `project_id` on memory_shards, eng_patterns and raw_conversations; existing rows stay global
  (NULL). A rename changes the key only (rows refer to the id). No foreign key: its check on
  every written row cost `memories import` 17% of its rows/s (16.9k -> 14.1k at 10,000 notes),
  and projects are never deleted (`projects rename --merge` moves rows and leaves the merged
  project empty), so no row can refer to a missing one.
- De-duplication per (user, project, content); pattern import identity per (project, path
  relative to the repository's root, title). NULL is "no project", so both use
  COALESCE(project_id, 0): a unique index treats NULLs as distinct on PostgreSQL before 15.
  No other index: a project filter is checked on the rows the existing indexes find (most of a
  user's rows are in the project at hand), while another index would cost every write.
- Statistics for the new column, so that recall's scan decision knows its values at once.
- `aletheia_project_share(table, project)`: the share of a table's rows that a search scoped to
  `project` may return (the project's rows and the global ones), from the column's statistics,
  so that recall keeps scanning HNSW plainly when nearly every row qualifies (see 0017).

Downgrade: the old identities cannot hold rows that now differ only by project. A memory whose
content its user also has in another project is kept once (the oldest); a pattern imported in
several projects keeps its rows, with `<project>:` put before its source path.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "aletheia_app"
TABLES = ("memory_shards", "eng_patterns", "raw_conversations")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS projects (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            key TEXT NOT NULL,
            display_name TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS uq_projects_key ON projects (key)")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON projects TO {APP_ROLE}")
    op.execute(f"""DO $$ BEGIN
        EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO {APP_ROLE}', pg_get_serial_sequence('projects', 'id'));
    END $$""")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS project_id BIGINT")

    op.execute("DROP INDEX IF EXISTS uq_memory_shards_user_content_hash")
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS uq_memory_shards_user_project_content_hash "
               "ON memory_shards (user_id, (COALESCE(project_id, 0)), content_hash)")
    op.execute("DROP INDEX IF EXISTS uq_eng_patterns_source")
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS uq_eng_patterns_source "
               "ON eng_patterns ((COALESCE(project_id, 0)), source_path, (COALESCE(title, ''))) "
               "WHERE source_path IS NOT NULL")

    for table in TABLES:
        op.execute(f"ANALYZE {table} (project_id)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION aletheia_project_share(tbl regclass, project bigint)
        RETURNS real
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT s.null_frac + CASE WHEN project IS NULL THEN 0 ELSE COALESCE((
                       SELECT v.share
                       FROM unnest(s.most_common_vals::text::bigint[], s.most_common_freqs) AS v(value, share)
                       WHERE v.value = project), 0) END
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = 'project_id'
            WHERE c.oid = tbl AND c.relname IN ('memory_shards', 'eng_patterns', 'raw_conversations')
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION aletheia_project_share(regclass, bigint) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION aletheia_project_share(regclass, bigint) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS aletheia_project_share(regclass, bigint)")
    op.execute("DROP INDEX IF EXISTS uq_eng_patterns_source")
    # (Guarded: a database stamped at 0018 without its objects downgrades too.)
    op.execute(
        """
        DO $$ BEGIN
            IF to_regclass('projects') IS NOT NULL THEN
                UPDATE eng_patterns p SET source_path = j.key || ':' || p.source_path
                FROM projects j
                WHERE p.project_id = j.id AND p.source_path IS NOT NULL
                  AND EXISTS (SELECT FROM eng_patterns o WHERE o.id <> p.id AND o.source_path = p.source_path
                              AND COALESCE(o.title, '') = COALESCE(p.title, ''));
            END IF;
        END $$
        """
    )
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS uq_eng_patterns_source "
               "ON eng_patterns (source_path, (COALESCE(title, ''))) WHERE source_path IS NOT NULL")
    op.execute("DROP INDEX IF EXISTS uq_memory_shards_user_project_content_hash")
    op.execute(
        """
        DELETE FROM memory_shards m
        WHERE EXISTS (SELECT FROM memory_shards o WHERE o.user_id = m.user_id
                      AND o.content_hash = m.content_hash AND o.id < m.id)
        """
    )
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS uq_memory_shards_user_content_hash "
               "ON memory_shards (user_id, content_hash)")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS project_id")
    op.execute("DROP TABLE IF EXISTS projects")
