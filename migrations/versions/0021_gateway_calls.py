"""gateway calls: what `aletheia-mcp gateway` records of each call, and replays linked to originals

raw_conversations gains, all nullable and without defaults (adding them rewrites no row; rows
logged before, and exchanges logged by `log_exchange` or hooks, keep NULL):
- `endpoint` (the API path, e.g. /v1/messages), `request` (the request body besides its messages:
  system prompt, tools, parameters), `stream`, `outcome` (completed, upstream_error, ...),
  `ttft_ms` (time to first token) and `usage` (token counts as the provider reported them);
- `replay_of`: the id of the exchange a `conversations replay` re-sent. No foreign key, like the
  table's other references (project_id, memory_ids): purging an original keeps its replays.
  Indexed where set only: finding the replays of an exchange, or only replays, reads the index;
  the originals (nearly every row) cost the index nothing.

The full-text column is left as it is (messages and response): including `request` would
recompute it for every stored row.

Downgrade drops the columns (replays then look like originals) and the index.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("endpoint", "TEXT"),
    ("request", "JSONB"),
    ("stream", "BOOLEAN"),
    ("outcome", "TEXT"),
    ("ttft_ms", "INTEGER"),
    ("usage", "JSONB"),
    ("replay_of", "BIGINT"),
)


def upgrade() -> None:
    for name, sql_type in COLUMNS:
        op.execute(f"ALTER TABLE raw_conversations ADD COLUMN IF NOT EXISTS {name} {sql_type}")
    op.execute("CREATE INDEX IF NOT EXISTS ix_raw_conversations_replay_of ON raw_conversations (replay_of) "
               "WHERE replay_of IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_raw_conversations_replay_of")
    for name, _ in reversed(COLUMNS):
        op.execute(f"ALTER TABLE raw_conversations DROP COLUMN IF EXISTS {name}")
