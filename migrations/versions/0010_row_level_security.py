"""row-level security on memory_shards and raw_conversations

The application works as the role `aletheia_app` (the pool does SET ROLE on every connection it
hands out) with the acting user in the setting `aletheia.user_id`. Policies, FORCEd so that
they also hold for the tables' owner:
- `aletheia_user_isolation` (to aletheia_app): only rows whose user_id is the acting user;
- `aletheia_maintenance` (to every other role): unrestricted, for migrations and `reembed`,
  which run as the login role.
Patterns (eng_patterns) are shared by design and get no policy.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "aletheia_app"
ISOLATED = ("memory_shards", "raw_conversations")
USER_MATCHES = "user_id = current_setting('aletheia.user_id', true)"
NOT_APP = f"current_user <> '{APP_ROLE}'"


def upgrade() -> None:
    # Roles are cluster-wide: another database of the same server may have created it already.
    op.execute(f"DO $$ BEGIN CREATE ROLE {APP_ROLE} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    op.execute(f"""DO $$ BEGIN
        IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
            EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
        END IF;
    END $$""")
    op.execute(f"DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO {APP_ROLE}', current_schema()); END $$")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON memory_shards, raw_conversations, eng_patterns TO {APP_ROLE}")
    op.execute(f"GRANT SELECT ON alembic_version TO {APP_ROLE}")
    op.execute(f"""DO $$ DECLARE seq text; BEGIN
        FOR seq IN SELECT pg_get_serial_sequence(t, 'id') FROM unnest(ARRAY['memory_shards', 'raw_conversations',
                                                                             'eng_patterns']) AS t
        LOOP EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO {APP_ROLE}', seq); END LOOP;
    END $$""")
    for table in ISOLATED:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"DROP POLICY IF EXISTS aletheia_user_isolation ON {table}")
        op.execute(f"CREATE POLICY aletheia_user_isolation ON {table} TO {APP_ROLE} "
                   f"USING ({USER_MATCHES}) WITH CHECK ({USER_MATCHES})")
        op.execute(f"DROP POLICY IF EXISTS aletheia_maintenance ON {table}")
        op.execute(f"CREATE POLICY aletheia_maintenance ON {table} USING ({NOT_APP}) WITH CHECK ({NOT_APP})")


def downgrade() -> None:
    for table in ISOLATED:
        op.execute(f"DROP POLICY IF EXISTS aletheia_maintenance ON {table}")
        op.execute(f"DROP POLICY IF EXISTS aletheia_user_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON memory_shards, raw_conversations, eng_patterns FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON alembic_version FROM {APP_ROLE}")
    # The role itself stays: it is cluster-wide and other databases may use it.
