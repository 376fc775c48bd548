"""A word in a pattern's title outranks the same word in another pattern's body (titles carry
tsvector weight A, migration 0007; the keyword ranking counts them TITLE_BOOST extra times)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_server.app_context import open_app
from mcp_server.db import patterns as repo
from mcp_server.db.hybrid_query import HybridQuery, build_sql
from mcp_server.db.planner_stats import TableStats
from mcp_server.server import create_server
from mcp_server.settings import Settings
from tests.helpers import call, free_port, make_settings

pytestmark = pytest.mark.anyio
# Same length; the body pattern is stored last (newer) and is one word shorter: without the title's
# weight it would rank first.
TITLED = ("Idempotency keys", "Retried payment requests carry a client token so the server applies them once.")
MENTIONED = ("Payment retries", "Retried payment requests reuse the token: idempotency makes them safe.")


async def test_find_patterns_ranks_the_title_match_first(database_url: str, tmp_path: Path) -> None:
    # Keywords alone: the embedder is down (nothing listens on that port), so no vector reorders them.
    settings = make_settings(database_url, tmp_path, embedding_provider="openai", embedding_model="fake-embed",
                             embedding_dim=16, embedding_api_base=f"http://127.0.0.1:{free_port()}/v1",
                             embedding_max_retries=0, embedding_timeout_s=2.0)
    async with Client(create_server(settings)) as client:
        ids = {}
        for title, content in (TITLED, MENTIONED):
            ids[title] = (await call(client, "add_pattern", {"title": title, "content": content}))["id"]
        found = await call(client, "find_patterns", {"query": "idempotency"})
        assert [r["id"] for r in found["results"]] == [ids[TITLED[0]], ids[MENTIONED[0]]]


async def test_the_order_comes_from_the_title_weight(settings: Settings) -> None:
    """The same two patterns ranked with and without titles counted (HybridQuery.titles): the
    order flips, so the test above depends on the title's weight, not on length or age."""
    async with open_app(settings, load_in_background=False) as app:
        async with app.database.connection() as conn:
            for title, content in (TITLED, MENTIONED):
                await conn.execute("INSERT INTO eng_patterns (title, content) VALUES ($1, $2)", title, content)
        found = await repo.search(app.database, text="idempotency", vector=None, model=None, limit=10,
                                  tags=None, strategy_type=None)
        assert [p.title for p in found] == [TITLED[0], MENTIONED[0]]
        async with app.database.connection() as conn:
            terms = await TableStats("eng_patterns").search_terms(conn, "idempotency")
            titles = {}
            for counted in (True, False):
                sql, values, _ = build_sql(HybridQuery(table="eng_patterns", columns="t.id, t.title",
                                                       text="idempotency", terms=terms, titles=counted))
                titles[counted] = [r["title"] for r in await conn.fetch(sql, *values)]
        assert titles[True] == [TITLED[0], MENTIONED[0]]
        assert titles[False] == [MENTIONED[0], TITLED[0]]
