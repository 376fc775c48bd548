"""hook injections: what the coding agents' hooks put into each session's context

`aletheia-mcp hook EVENT` adds memories and patterns to an agent's context (services/hooks.py).
The hooks' background process may restart between two hooks of one session, so what a session
was given is kept here, one row per item given (or, kind `denied-write`, per new file whose first
write was refused with its conventions):
- each memory is given to a session once, each pattern once, a new file's first write is refused
  once; after a compaction the session's items are given again (new rows);
- `prompt_id` is the turn the row was given in, when the client says (Claude Code, Codex); a
  session start's rows have none and belong to the next turn;
- `closed_at` is set when the Stop hook ends the turn: the open rows of a turn are what the hooks
  injected during it, the logged exchange's provenance, and `exchange_id` names that exchange (NULL
  when the turn could not be logged: its rows still close, so they never count in the next one).
  No foreign key, like raw_conversations' own references (purging an exchange keeps the record of
  what was given).
Rows belong to a user, isolated by row-level security exactly like memory_shards (0010).
Index: every statement reads one session of one user.

Downgrade drops the table (sessions in progress then get their items once more).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-09
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "aletheia_app"
TABLE = "hook_injections"
USER_MATCHES = "user_id = current_setting('aletheia.user_id', true)"
NOT_APP = f"current_user <> '{APP_ROLE}'"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {TABLE} (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            user_id TEXT NOT NULL,
            client TEXT NOT NULL,
            session_id TEXT NOT NULL,
            event TEXT NOT NULL,
            kind TEXT NOT NULL,
            item_id BIGINT,
            file_path TEXT,
            prompt_id TEXT,
            exchange_id BIGINT,
            closed_at TIMESTAMPTZ,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_session ON {TABLE} (user_id, client, session_id, id)")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO {APP_ROLE}")
    op.execute(f"""DO $$ BEGIN
        EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO {APP_ROLE}', pg_get_serial_sequence('{TABLE}', 'id'));
    END $$""")
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(f"DROP POLICY IF EXISTS aletheia_user_isolation ON {TABLE}")
    op.execute(f"CREATE POLICY aletheia_user_isolation ON {TABLE} TO {APP_ROLE} "
               f"USING ({USER_MATCHES}) WITH CHECK ({USER_MATCHES})")
    op.execute(f"DROP POLICY IF EXISTS aletheia_maintenance ON {TABLE}")
    op.execute(f"CREATE POLICY aletheia_maintenance ON {TABLE} USING ({NOT_APP}) WITH CHECK ({NOT_APP})")


def downgrade() -> None:
    op.execute(f"DROP TABLE IF EXISTS {TABLE}")  # (its policies, grants and index go with it)
