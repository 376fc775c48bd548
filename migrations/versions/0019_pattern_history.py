"""pattern ownership and history: who created and who last changed each pattern, and every version

Patterns are shared by every user of a database, so any of them can change one: this records who
did, in a way the application cannot forge.

- `eng_patterns.created_by` / `updated_by`: the acting user (`aletheia.user_id`, which the pool sets
  on every connection it hands out; `db:<role>` for a login-role session such as `psql`). Set by a
  BEFORE trigger, so no code path (tool, CLI, import) can pass its own value; `created_by` never
  changes. Rows from before this revision keep NULL: nobody knows who made them.
- `eng_pattern_versions`: one row per change that a person could see (create, update, delete;
  re-importing an unchanged file or re-embedding is no change), numbered per pattern from 1, with
  the pattern's fields after the change (before it, for a delete), who made it and when, and an
  optional note (`aletheia.change_note`, set for one transaction, e.g. "restored version 2").
  Written by a SECURITY DEFINER trigger; the application role may only read it, so history cannot
  be rewritten through the application. No foreign key: a deleted pattern keeps its history (and
  can be restored from it).
- Existing patterns get a version 1 (`baseline`) so that `patterns restore` can go back to today's
  text.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "aletheia_app"

# The fields a version records (what `patterns restore` puts back). Not the embedding (derived) nor
# last_updated/created_by/updated_by (the version row has its own).
SNAPSHOT = ("jsonb_build_object('title', {r}.title, 'content', {r}.content, 'tags', {r}.tags, "
            "'strategy_type', {r}.strategy_type, 'target_contexts', {r}.target_contexts, 'author', {r}.author, "
            "'metadata', {r}.metadata, 'source_path', {r}.source_path, 'project_id', {r}.project_id)")
ACTOR = ("COALESCE(NULLIF(current_setting('aletheia.user_id', true), ''), 'db:' || session_user)")


def upgrade() -> None:
    op.execute("ALTER TABLE eng_patterns ADD COLUMN IF NOT EXISTS created_by TEXT")
    op.execute("ALTER TABLE eng_patterns ADD COLUMN IF NOT EXISTS updated_by TEXT")
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS eng_pattern_versions (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            pattern_id BIGINT NOT NULL,
            version INTEGER NOT NULL,
            action TEXT NOT NULL,
            changed_by TEXT NOT NULL,
            changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            note TEXT,
            snapshot JSONB NOT NULL
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS uq_eng_pattern_versions_pattern_version "
               "ON eng_pattern_versions (pattern_id, version)")
    op.execute(f"GRANT SELECT ON eng_pattern_versions TO {APP_ROLE}")

    # BEFORE: stamp the acting user (the application cannot choose it).
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION aletheia_pattern_stamp() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                NEW.created_by := {ACTOR};
                NEW.updated_by := NEW.created_by;
            ELSE
                NEW.created_by := OLD.created_by;
                IF {SNAPSHOT.format(r='NEW')} IS DISTINCT FROM {SNAPSHOT.format(r='OLD')} THEN
                    NEW.updated_by := {ACTOR};
                ELSE
                    NEW.updated_by := OLD.updated_by;
                END IF;
            END IF;
            RETURN NEW;
        END $$
        """
    )
    # AFTER: append the version (as the table's owner: the application role may not write history).
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION aletheia_pattern_version() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER AS $$
        DECLARE
            row_id bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
            fields jsonb;
        BEGIN
            IF TG_OP = 'DELETE' THEN
                fields := {SNAPSHOT.format(r='OLD')};
            ELSE
                fields := {SNAPSHOT.format(r='NEW')};
                IF TG_OP = 'UPDATE' AND fields IS NOT DISTINCT FROM {SNAPSHOT.format(r='OLD')} THEN
                    RETURN NULL;  -- an unchanged re-import, a new embedding: nothing a person would see
                END IF;
            END IF;
            INSERT INTO eng_pattern_versions (pattern_id, version, action, changed_by, note, snapshot)
            SELECT row_id, COALESCE(max(v.version), 0) + 1,
                   CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END, {ACTOR},
                   NULLIF(current_setting('aletheia.change_note', true), ''), fields
            FROM eng_pattern_versions v WHERE v.pattern_id = row_id;
            RETURN NULL;
        END $$
        """
    )
    # A SECURITY DEFINER function runs as the table's owner: built-ins first (pg_catalog), so that a
    # function someone created in the schema (where PostgreSQL <= 14 lets every role create) can
    # never shadow `max` or `current_setting`; then the schema, for the table; pg_temp last (unnamed, it
    # would be searched first).
    op.execute("DO $$ BEGIN EXECUTE format('ALTER FUNCTION aletheia_pattern_version() "
               "SET search_path = pg_catalog, %I, pg_temp', current_schema()); END $$")
    op.execute("REVOKE ALL ON FUNCTION aletheia_pattern_version() FROM PUBLIC")
    op.execute("DROP TRIGGER IF EXISTS aletheia_pattern_stamp ON eng_patterns")
    op.execute("CREATE TRIGGER aletheia_pattern_stamp BEFORE INSERT OR UPDATE ON eng_patterns "
               "FOR EACH ROW EXECUTE FUNCTION aletheia_pattern_stamp()")
    op.execute("DROP TRIGGER IF EXISTS aletheia_pattern_version ON eng_patterns")
    op.execute("CREATE TRIGGER aletheia_pattern_version AFTER INSERT OR UPDATE OR DELETE ON eng_patterns "
               "FOR EACH ROW EXECUTE FUNCTION aletheia_pattern_version()")

    op.execute(
        f"""
        INSERT INTO eng_pattern_versions (pattern_id, version, action, changed_by, changed_at, note, snapshot)
        SELECT p.id, 1, 'baseline', 'unknown', p.last_updated,
               'the pattern as it was when history began', {SNAPSHOT.format(r='p')}
        FROM eng_patterns p
        WHERE NOT EXISTS (SELECT FROM eng_pattern_versions v WHERE v.pattern_id = p.id)
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS aletheia_pattern_version ON eng_patterns")
    op.execute("DROP TRIGGER IF EXISTS aletheia_pattern_stamp ON eng_patterns")
    op.execute("DROP FUNCTION IF EXISTS aletheia_pattern_version()")
    op.execute("DROP FUNCTION IF EXISTS aletheia_pattern_stamp()")
    op.execute("DROP TABLE IF EXISTS eng_pattern_versions")
    op.execute("ALTER TABLE eng_patterns DROP COLUMN IF EXISTS updated_by")
    op.execute("ALTER TABLE eng_patterns DROP COLUMN IF EXISTS created_by")
