"""The queries the hooks use, on the real database: a prompt's memories leave out what the session
already has in SQL (a long session never runs out of new hits), and the items to give again after
a compaction, or at a session start, come from MemoryService / PatternService in one query each."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcp_server.app_context import AppContext, open_app
from mcp_server.schemas import MAX_RECALL_LIMIT
from mcp_server.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[AppContext]:
    async with open_app(settings) as opened:
        yield opened


async def test_relevant_leaves_out_what_the_session_has_in_the_search_itself(app: AppContext) -> None:
    ids = [(await app.memories.remember(f"Deploys use the blue-green pipeline, note {n}.", scope="global")).id
           for n in range(MAX_RECALL_LIMIT + 2)]
    query = "Deploys use the blue-green pipeline"
    best, _ = await app.memories.relevant(query, MAX_RECALL_LIMIT, 0.0, keyword_terms=3)
    assert len(best) == MAX_RECALL_LIMIT

    # More given already than recall's limit: over-fetching `limit + len(exclude)` capped at the
    # limit found only those, and gave nothing new.
    rest, _ = await app.memories.relevant(query, 2, 0.0, [m.id for m in best], keyword_terms=3)

    assert sorted(m.id for m in rest) == sorted(set(ids) - {m.id for m in best})


async def test_get_many_keeps_the_order_asked_and_skips_what_is_gone(app: AppContext) -> None:
    first, second, third = [(await app.memories.remember(f"Memory {n}.", scope="global")).id for n in range(3)]
    await app.memories.forget(second)
    assert [m.id for m in await app.memories.get_many([third, second, first])] == [third, first]

    one = await app.patterns.add("One.", title="One", scope="global")
    two = await app.patterns.add("Two.", title="Two", scope="global")
    assert [p.id for p in await app.patterns.get_many([two.id, 12345, one.id])] == [two.id, one.id]


async def test_for_every_path_gives_the_patterns_filed_for_every_file(app: AppContext) -> None:
    everywhere = await app.patterns.add("Docstrings.", title="Docs", scope="global")
    catch_all = await app.patterns.add("Short lines.", title="Lines", target_contexts=["**/*"], scope="global")
    await app.patterns.add("Fixtures.", title="Tests", target_contexts=["tests/**/*.py"], scope="global")

    found = {p.id for p in await app.patterns.for_every_path()}

    assert {everywhere.id, catch_all.id} <= found and len(found) == 2
