"""Renaming and merging projects on the real database, while an application keeps running under
the old name: no row ever ends up without a project."""

from __future__ import annotations

import pytest

from mcp_server.app_context import open_app
from mcp_server.services.projects import rename_project
from mcp_server.settings import Settings
from tests.helpers import sql

pytestmark = pytest.mark.anyio

OLD, NEW = "github.com/org/old", "github.com/org/new"


async def memories_by_project(url: str) -> list[tuple[str | None, str]]:
    rows = await sql(url, "SELECT p.key, m.content FROM memory_shards m "
                          "LEFT JOIN projects p ON p.id = m.project_id ORDER BY m.id")
    return [(r["key"], r["content"]) for r in rows]


async def test_a_server_running_under_a_merged_project_keeps_writing_to_a_project(
    settings: Settings, database_url: str
) -> None:
    async with open_app(settings.model_copy(update={"project": OLD}), load_in_background=False) as app:
        await app.embedder.load_once()
        await app.memories.remember("before the merge")
        await app.patterns.add("Use ruff.", title="Lint")  # added by a tool: no source file
        async with open_app(settings.model_copy(update={"project": NEW}), load_in_background=False) as other:
            await other.embedder.load_once()
            await other.memories.remember("written as new")
            await other.patterns.add("Use ruff.", title="Lint")  # the same rule, in the other project

        first = await rename_project(settings, OLD, NEW, merge=True)
        assert first.merged is not None
        assert (first.merged.memories, first.merged.patterns, first.merged.clashing_patterns) == (1, 0, 1)
        await app.memories.remember("after the merge")  # this application still knows OLD's id
        assert await memories_by_project(database_url) == [
            (NEW, "before the merge"), (NEW, "written as new"), (OLD, "after the merge")]

        again = await rename_project(settings, OLD, NEW, merge=True)  # what it wrote since moves too
        assert again.merged is not None and again.merged.memories == 1

    assert {key for key, _ in await memories_by_project(database_url)} == {NEW}
    lint = await sql(database_url, "SELECT p.key FROM eng_patterns t JOIN projects p ON p.id = t.project_id")
    assert [r["key"] for r in lint] == [NEW]


async def test_a_renamed_project_keeps_receiving_what_a_running_server_writes(
    settings: Settings, database_url: str
) -> None:
    async with open_app(settings.model_copy(update={"project": OLD}), load_in_background=False) as app:
        await app.embedder.load_once()
        await app.memories.remember("before the rename")
        report = await rename_project(settings, OLD, NEW)
        assert report.merged is None
        await app.memories.remember("after the rename")
    assert await memories_by_project(database_url) == [(NEW, "before the rename"), (NEW, "after the rename")]
