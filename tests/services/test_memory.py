"""MemoryService on the real database: JSONL import and export, the provenance a recall records
for a model's session, and the checks shared by the tools and the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mcp_server.app_context import open_app
from mcp_server.errors import InvalidInputError
from mcp_server.settings import Settings
from tests.helpers import make_settings, sql

pytestmark = pytest.mark.anyio


async def test_import_then_export_keeps_every_memory_and_skips_duplicates(settings: Settings) -> None:
    lines = [
        json.dumps({"content": "We deploy blue/green.", "source": "adr-7", "metadata": {"kind": "decision"},
                    "created_at": "2026-01-02T03:04:05+00:00"}),
        "not json",
        json.dumps({"content": "Retries use exponential backoff."}),
        "",
        json.dumps({"content": "   "}),
    ]
    async with open_app(settings, load_in_background=False) as app:
        first = await app.memories.import_jsonl(lines)
        again = await app.memories.import_jsonl(lines)
        out = io.StringIO()
        exported = await app.memories.export_jsonl(out)

    assert (first.read, first.inserted, first.duplicates) == (4, 2, 0)
    assert [r.split(":")[0] for r in first.rejected] == ["line 2", "line 5"]
    assert (again.inserted, again.duplicates) == (0, 2)
    assert exported == 2
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows[0] == {"content": "We deploy blue/green.", "source": "adr-7", "metadata": {"kind": "decision"},
                       "created_at": "2026-01-02T03:04:05+00:00", "project": None}
    assert rows[1]["content"] == "Retries use exponential backoff." and rows[1]["metadata"] == {}


async def test_import_with_embed_gives_the_new_rows_vectors(settings: Settings) -> None:
    lines = [json.dumps({"content": f"note {i} about canary releases"}) for i in range(5)]
    async with open_app(settings, load_in_background=False) as app:
        report = await app.memories.import_jsonl(lines, embed=True)
        status = await app.status.report()
        found = await app.memories.recall("canary releases", limit=5)
    assert (report.inserted, report.embedded, report.embed_error) == (5, 5, None)
    assert status.counts.memories_awaiting_embedding == 0
    assert found.mode == "hybrid" and len(found.results) == 5


async def test_a_sessions_provenance_is_what_the_model_was_shown(database_url: str, tmp_path: Path) -> None:
    """Recall fits its answer to MAX_RESPONSE_CHARS; the memories cut from it were never seen by the
    model, so the next logged exchange must not claim them."""
    settings = make_settings(database_url, tmp_path, max_response_chars=2_000)
    async with open_app(settings) as app:
        ids = [(await app.memories.remember(f"deploy note {i}: " + "word " * 150)).id for i in range(4)]
        shown = await app.memories.recall("deploy note", limit=4, session="s1")
        unrecorded = await app.memories.recall("deploy note", limit=4)  # no session: the CLI, nothing recorded
        logged = await app.conversations.log([{"role": "user", "content": "how do we deploy?"}], "blue/green",
                                             session="s1")
        exchange = await app.conversations.get(logged.id)
    assert 0 < len(shown.results) < len(ids) == len(unrecorded.results)
    assert exchange.memory_ids == sorted(r.id for r in shown.results)


async def test_update_refuses_content_another_memory_has(settings: Settings) -> None:
    async with open_app(settings) as app:
        first = await app.memories.remember("We deploy blue/green.")
        second = await app.memories.remember("We deploy on Tuesdays.")
        with pytest.raises(InvalidInputError, match=f"Memory {first.id} already has exactly this content"):
            await app.memories.update(second.id, content="We deploy blue/green.")
        assert (await app.memories.get(second.id)).content == "We deploy on Tuesdays."


async def test_import_redacts_secrets_in_every_field(settings: Settings, database_url: str) -> None:
    token = "npm_" + "q1W2e3R4t5Y6u7I8o9P0a1S2d3F4g5H6j7K8"
    lines = [json.dumps({"content": f"//registry.npmjs.org/:_authToken={token}", "source": f"npmrc {token}",
                         "metadata": {"npm_token": token, "kind": "config"}})]
    async with open_app(settings, load_in_background=False) as app:
        report = await app.memories.import_jsonl(lines)
    [row] = await sql(database_url, "SELECT content, source, metadata::text AS metadata FROM memory_shards")
    assert token not in f"{row['content']} {row['source']} {row['metadata']}"
    assert row["content"] == "//registry.npmjs.org/:_authToken=[REDACTED:npm_token]"
    assert (report.inserted, report.redactions) == (1, 3)
