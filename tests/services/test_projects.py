"""ProjectService and renaming on the real database: a running application keeps writing to the
right project after `projects rename` moved or merged the one it knew."""

from __future__ import annotations

import pytest

from mcp_server.app_context import open_app
from mcp_server.services import projects
from mcp_server.services.projects import rename_project
from mcp_server.settings import Settings
from tests.helpers import sql

pytestmark = pytest.mark.anyio


async def keys_of_memories(url: str) -> list[tuple[str | None, str]]:
    rows = await sql(url, "SELECT p.key, m.content FROM memory_shards m "
                          "LEFT JOIN projects p ON p.id = m.project_id ORDER BY m.id")
    return [(r["key"], r["content"]) for r in rows]


async def test_a_running_application_follows_a_merge_once_its_cached_id_expires(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = "github.com/org/old", "github.com/org/new"
    running = settings.model_copy(update={"project": old})
    async with open_app(running, load_in_background=False) as app:
        await app.embedder.load_once()
        await app.memories.remember("before the merge")
        other = settings.model_copy(update={"project": new})
        async with open_app(other, load_in_background=False) as elsewhere:
            await elsewhere.embedder.load_once()
            await elsewhere.memories.remember("written as new")
        report = await rename_project(settings, old, new, merge=True)
        assert report.merged is not None and report.merged.memories == 1

        monkeypatch.setattr(projects, "PROJECT_ID_TTL_S", 0.0)  # as if a minute had passed
        await app.memories.remember("after the merge")  # still configured for `old`: a new `old` project

    assert await keys_of_memories(database_url) == [
        (new, "before the merge"), (new, "written as new"), (old, "after the merge")]
    orphans = await sql(database_url, "SELECT count(*) AS n FROM memory_shards m WHERE m.project_id IS NOT NULL "
                                      "AND NOT EXISTS (SELECT FROM projects p WHERE p.id = m.project_id)")
    assert orphans[0]["n"] == 0
