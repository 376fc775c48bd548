"""brace globs: candidate keys for each alternative

Braces in globs are now alternatives (`**/*.{ts,tsx}` is `**/*.ts` or `**/*.tsx`), so such a
glob's candidate keys (eng_patterns.context_keys, see mcp_server/rules/globs.py) are those of its
alternatives (e:ts, e:tsx) instead of one that no file has (e:{ts,tsx}). Recomputed for the
patterns that have a brace in a glob; nothing else changes (no new pattern version: the keys are
derived, not something a person wrote).

Downgrade changes nothing: the extra keys only make the older code check a few more candidates,
which its matcher (braces literal) then rejects as before.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mcp_server.rules.globs import context_keys

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, target_contexts FROM eng_patterns WHERE array_to_string(target_contexts, ' ') LIKE '%{%'"))
    for row_id, globs in rows.fetchall():
        bind.execute(sa.text("UPDATE eng_patterns SET context_keys = :keys WHERE id = :id"),
                     {"keys": context_keys(list(globs or [])), "id": row_id})


def downgrade() -> None:
    pass
