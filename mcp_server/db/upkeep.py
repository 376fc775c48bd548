"""Keeping search fast around writes: GIN pending lists and planner statistics.

GIN's "fast update" appends new entries to an unsorted pending list that every full-text search
reads through, until the list outgrows `gin_pending_list_limit` and is merged into the index.
At PostgreSQL's default (4 MB) a hybrid search at 100k rows spent ~1.2 ms in its GIN lookup with
a 2.4 MB list, 0.07 ms with an empty one. Pooled connections (single-row writes: remember,
log_exchange, patterns) use a 64 kB limit, which kept the mean insert cost unchanged; bulk
imports raise it for their own transactions (merging larger batches is ~30% cheaper per row)
and empty the lists when they finish.

After a bulk write the planner's statistics are missing or stale until autovacuum's next visit,
and plans built on them can scan the whole table (see migration 0015): bulk writes refresh them
when they finish.
"""

from __future__ import annotations

from mcp_server.db.engine import Connection

BULK_GIN_PENDING_LIST_LIMIT = "4MB"  # (pooled connections: engine.INTERACTIVE_GIN_PENDING_LIST_LIMIT)


async def use_bulk_gin_pending_list(conn: Connection) -> None:
    """Within the current transaction, let GIN batch more entries before merging them."""
    await conn.execute(f"SET LOCAL gin_pending_list_limit = '{BULK_GIN_PENDING_LIST_LIMIT}'")


async def refresh_after_bulk_write(conn: Connection, table: str, written: int) -> None:
    """Fresh statistics (when `written` changed over a tenth of the rows) and empty GIN pending lists."""
    if written > 0:
        await conn.fetchval("SELECT aletheia_refresh_after_bulk_write($1::regclass, $2)", table, written)
