"""PatternService and RuleFileService on the real database: identity, vectors kept or renewed on
update, import identity, and context files written into a repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server.app_context import open_app
from mcp_server.services.patterns import PatternInput
from mcp_server.settings import Settings
from tests.helpers import sql

pytestmark = pytest.mark.anyio


async def embedding_of(database_url: str, pattern_id: int) -> str | None:
    rows = await sql(database_url, "SELECT embedding::text AS v FROM eng_patterns WHERE id = $1", pattern_id)
    return rows[0]["v"]


async def test_update_renews_the_vector_only_when_its_text_changes(settings: Settings, database_url: str) -> None:
    async with open_app(settings) as app:
        created = await app.patterns.add("Validate request bodies with pydantic.", title="Validation",
                                         tags=["api"])
        again = await app.patterns.add("Validate request bodies with pydantic.", title="Validation")
        before = await embedding_of(database_url, created.id)
        await app.patterns.update(created.id, tags=["api", "python"])  # not part of the embedded text
        after_tags = await embedding_of(database_url, created.id)
        await app.patterns.update(created.id, metadata={"description": "How handlers read JSON"})
        after_description = await embedding_of(database_url, created.id)
    assert (created.created, again.created, again.id) == (True, False, created.id)
    assert before is not None and after_tags == before
    assert after_description is not None and after_description != before


async def test_upsert_identity_is_source_path_and_title(settings: Settings) -> None:
    def item(title: str, content: str, source: str) -> PatternInput:
        return PatternInput.build(settings, content=content, title=title, source_path=source)

    async with open_app(settings) as app:
        first = await app.patterns.upsert_many([item("Style", "Use ruff.", "a/AGENTS.md"),
                                                item("Style", "Use black.", "b/AGENTS.md")])
        second = await app.patterns.upsert_many([item("Style", "Use ruff format.", "a/AGENTS.md")])
        patterns = await app.patterns.all()
    assert [status for _, status in first] == ["created", "created"]
    assert second == [(first[0][0], "updated")]
    assert sorted(p.content for p in patterns) == ["Use black.", "Use ruff format."]


async def test_context_files_are_planned_then_written(settings: Settings, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "AGENTS.md").write_text("# Our guide\n\nHand-written intro.\n")
    async with open_app(settings) as app:
        await app.patterns.add("Run pytest before pushing.", title="Testing")
        planned = (await app.rule_files.plan_context_files(repo, "agents_md", write=False)).changes
        assert (repo / "AGENTS.md").read_text() == "# Our guide\n\nHand-written intro.\n"  # a dry run
        written = (await app.rule_files.plan_context_files(repo, "agents_md")).changes
        unchanged = (await app.rule_files.plan_context_files(repo, "agents_md")).changes
    assert [c.path for c in planned] == [c.path for c in written] == ["AGENTS.md"]
    text = (repo / "AGENTS.md").read_text()
    assert text.startswith("# Our guide\n\nHand-written intro.\n") and "Run pytest before pushing." in text
    assert unchanged == []
