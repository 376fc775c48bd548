"""Search stays fast around writes: bulk writes leave fresh planner statistics and empty GIN
pending lists behind, and single-row writes keep the pending lists small (db/upkeep.py).

`gin_clean_pending_list` (as the table owner) returns how many pending-list pages it merged:
the size of the list every full-text search would have had to read through.
"""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from mcp_server.app_context import open_app
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio

# Matches GIN's page size; the pooled connections' list limit is 64 kB.
GIN_PAGE_BYTES = 8192


def notes(count: int, seed: int) -> list[str]:
    """Notes of 60 words drawn from 5,000 made-up ones: many distinct GIN entries per row."""
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{int(w)}x" for w in rng.integers(0, 5_000, size=60)) for _ in range(count)]


async def owner_fetchval(database_url: str, sql: str) -> object:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def pending_pages(database_url: str, index: str) -> int:
    return int(await owner_fetchval(database_url, f"SELECT gin_clean_pending_list('{index}'::regclass)"))  # type: ignore[arg-type]


async def test_memories_import_leaves_statistics_and_no_pending_list(database_url: str, settings: Settings) -> None:
    lines = [json.dumps({"content": text, "metadata": {"n": i}}) for i, text in enumerate(notes(400, seed=1))]
    async with open_app(settings, load_in_background=False) as app:
        report = await app.memories.import_jsonl(lines)
    assert report.inserted == 400
    # Analyzed: the planner knows the row count and the common words (TableStats reads them).
    assert await owner_fetchval(database_url, "SELECT reltuples FROM pg_class WHERE relname = 'memory_shards'") == 400
    assert await owner_fetchval(
        database_url,
        "SELECT most_common_elems IS NOT NULL FROM pg_stats "
        "WHERE tablename = 'memory_shards' AND attname = 'content_tsv'",
    )
    assert await pending_pages(database_url, "ix_memory_shards_content_tsv") == 0
    assert await pending_pages(database_url, "ix_memory_shards_metadata") == 0


async def test_vector_backfill_refreshes_the_model_statistics(database_url: str, settings: Settings) -> None:
    # Imported rows wait for vectors; until the statistics know that they now have them, the
    # planner believes no row matches `embedding_model = <model>` and may scan instead of using HNSW.
    lines = [json.dumps({"content": text}) for text in notes(300, seed=2)]
    async with open_app(settings, load_in_background=False) as app:
        await app.memories.import_jsonl(lines)
        done = await app.vectors.fill()
    assert done == 300
    common_models = await owner_fetchval(
        database_url,
        "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'memory_shards' AND attname = 'embedding_model'",
    )
    assert common_models == "{hashing-v2}"


async def test_pattern_import_leaves_statistics(database_url: str, settings: Settings, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for i, text in enumerate(notes(40, seed=3)):
        (rules / f"rule{i}.md").write_text(f"---\nglobs: 'api{i}/*.py'\n---\n# Rule {i}\n\n{text}\n")
    async with open_app(settings, load_in_background=False) as app:
        report = await app.rule_files.import_files([rules])
    assert report.created == 40
    assert await owner_fetchval(database_url, "SELECT reltuples FROM pg_class WHERE relname = 'eng_patterns'") == 40
    assert await pending_pages(database_url, "ix_eng_patterns_content_tsv") == 0


async def test_single_row_writes_keep_the_pending_list_small(database_url: str, settings: Settings) -> None:
    texts = notes(300, seed=4)  # ~0.5 MB of GIN entries: far over 64 kB, far under the 4 MB default
    async with open_app(settings, load_in_background=False) as app:
        for text in texts:
            await app.memories.remember(text)
        found = await app.memories.recall(texts[123], limit=1)
    assert found.results[0].content == texts[123]
    assert await pending_pages(database_url, "ix_memory_shards_content_tsv") * GIN_PAGE_BYTES <= 72 * 1024
