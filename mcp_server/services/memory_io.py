"""Memories as JSONL: export one object per line, import in bulk with COPY.

Line format: {"content": str, "source": str|null, "metadata": object, "created_at": ISO-8601}.
Import stages each batch with binary COPY into a temporary table, then inserts it with
`ON CONFLICT (user_id, content_hash) DO NOTHING`: re-importing a file creates no duplicates.
Each batch is its own transaction, so an interrupted import keeps every committed batch and no
partial one. Imported rows wait for vectors (embedded afterwards, or by `reembed`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import anyio
import asyncpg

from mcp_server.db.memories import content_hash
from mcp_server.db.upkeep import refresh_after_bulk_write, use_bulk_gin_pending_list
from mcp_server.errors import InvalidInputError
from mcp_server.services import validation as check

IMPORT_BATCH_ROWS = 5_000


@dataclass
class ImportReport:
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)  # "line N: reason"


@dataclass(frozen=True)
class _Row:
    content: str
    digest: str
    source: str | None
    metadata: str
    created_at: datetime | None


def _parse_line(raw: str, max_chars: int) -> _Row:
    try:
        item = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"not JSON ({exc.msg})") from None
    if not isinstance(item, dict):
        raise InvalidInputError("not a JSON object")
    text = check.content(item.get("content"), max_chars)
    source = check.optional_label(item.get("source"), "source")
    meta = check.metadata(item.get("metadata")) or {}
    created = item.get("created_at")
    created_at = None
    if created is not None:
        try:
            created_at = datetime.fromisoformat(str(created))
        except ValueError:
            raise InvalidInputError("`created_at` is not an ISO-8601 timestamp") from None
    return _Row(text, content_hash(text), source, json.dumps(meta), created_at)


def _batches(lines: Iterable[str], report: ImportReport, max_chars: int) -> Iterator[list[_Row]]:
    batch: list[_Row] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        report.read += 1
        try:
            batch.append(_parse_line(raw, max_chars))
        except InvalidInputError as exc:
            report.rejected.append(f"line {number}: {exc}")
            continue
        if len(batch) >= IMPORT_BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


async def import_jsonl(
    conn: asyncpg.Connection, user_id: str, lines: Iterable[str], max_chars: int,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    report = ImportReport()
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS memory_import (content text, content_hash text, source text, "
        "metadata text, created_at timestamptz) ON COMMIT DELETE ROWS"
    )
    # Parsing and validating a batch (~17 us a line) runs in a worker thread while PostgreSQL
    # inserts the previous one (to_tsvector and the index entries, ~70 us a row): the two overlap.
    batches = _batches(lines, report, max_chars)
    batch = await anyio.to_thread.run_sync(next, batches, None)
    while batch is not None:
        parsed: list[list[_Row] | None] = []

        async def parse_next(into: list[list[_Row] | None] = parsed) -> None:
            into.append(await anyio.to_thread.run_sync(next, batches, None))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(parse_next)
            inserted = await _store_batch(conn, user_id, batch)
        report.inserted += inserted
        report.duplicates += len(batch) - inserted
        if progress:
            progress(len(batch))
        batch = parsed[0]
    await refresh_after_bulk_write(conn, "memory_shards", report.inserted)
    return report


async def _store_batch(conn: asyncpg.Connection, user_id: str, batch: list[_Row]) -> int:
    """One batch in one transaction; returns the number of rows inserted."""
    async with conn.transaction():
        await use_bulk_gin_pending_list(conn)
        # Committed batches must survive a crash (the import reports them as done), so the WAL
        # flush is waited for: synchronous_commit stays on.
        await conn.copy_records_to_table(
            "memory_import",
            records=[(r.content, r.digest, r.source, r.metadata, r.created_at) for r in batch],
            columns=["content", "content_hash", "source", "metadata", "created_at"],
        )
        status = await conn.execute(
            """
            INSERT INTO memory_shards (user_id, content, content_hash, source, metadata, created_at, updated_at)
            SELECT $1, content, content_hash, source, metadata::jsonb, COALESCE(created_at, now()), now()
            FROM memory_import
            ON CONFLICT (user_id, content_hash) DO NOTHING
            """,
            user_id,
        )
    return int(status.split()[-1])


async def export_jsonl(conn: asyncpg.Connection, user_id: str, out: IO[str]) -> int:
    written = 0
    async for line in _export_lines(conn, user_id):
        out.write(line)
        written += 1
    return written


async def _export_lines(conn: asyncpg.Connection, user_id: str) -> AsyncIterator[str]:
    async with conn.transaction():
        cursor = conn.cursor(
            "SELECT content, source, metadata, created_at FROM memory_shards WHERE user_id = $1 ORDER BY id",
            user_id, prefetch=2_000,
        )
        async for record in cursor:
            item: dict[str, Any] = {
                "content": record["content"],
                "source": record["source"],
                "metadata": record["metadata"],
                "created_at": record["created_at"].isoformat(),
            }
            yield json.dumps(item, ensure_ascii=False) + "\n"
