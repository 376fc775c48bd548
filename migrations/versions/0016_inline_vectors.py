"""keep vectors inline in the table row (STORAGE MAIN) instead of TOAST

pgvector's `vector` type defaults to EXTENDED storage: in any row over ~2 kB (a note of a few
hundred words plus its tsvector and a 384-d vector) PostgreSQL compresses the vector and moves
it to the TOAST table. Every vector read from the table then costs a TOAST lookup and a
decompression. The HNSW scan reads its own copies, but whenever the planner computes distances
from the table (below a few thousand rows it prefers that to the index, and filters can make it
do so on larger tables), each row cost ~2.4 us instead of ~1.2 us: the vector search over 1,000
notes took 2.4 ms instead of 1.1 ms. MAIN keeps the vector in the row; PostgreSQL moves the
other columns out first, and the vector only when the row would not fit in a page.

Existing rows are rewritten once (CLUSTER by primary key, which also rebuilds the indexes):
about as long as building the HNSW index, ~1 min per 100k rows.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("memory_shards", "eng_patterns")


def _store_vectors(storage: str, rewrite: bool) -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN embedding SET STORAGE {storage}")
        if rewrite:
            # Only new row versions follow a new storage setting: rewrite the existing ones.
            op.execute("SET LOCAL maintenance_work_mem = '1GB'")  # the HNSW rebuild, in memory
            op.execute(f"CLUSTER {table} USING {table}_pkey")
            op.execute(f"ALTER TABLE {table} SET WITHOUT CLUSTER")


def upgrade() -> None:
    _store_vectors("MAIN", rewrite=True)


def downgrade() -> None:
    # pgvector's default; rows already stored inline stay so until they are next written.
    _store_vectors("EXTENDED", rewrite=False)
