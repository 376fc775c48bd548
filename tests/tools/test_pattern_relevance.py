"""find_patterns with a file_path and a query: the query reorders the patterns that apply to the
file only when a pattern is really about it (issue 17).

Each case runs with the `hashing` embedder (hybrid search) and with keywords only: the real
`openai` provider pointed at a closed port, so every pattern is stored without a vector and every
query is searched by its words.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_server.db.patterns import QueryEvidence
from mcp_server.server import create_server
from mcp_server.services.patterns import real_relevance
from mcp_server.services.relevance_floors import Floor
from tests.helpers import call, free_port, make_settings

pytestmark = pytest.mark.anyio
MODES = ["hashing", "keywords"]
FILE = "api/users.py"
# Applying to FILE, most specific first, and one that does not apply (but is about TypeScript props).
PATTERNS = {
    "users": ("User ids", "User ids are UUIDs, never sequential integers.", ["api/users.py"]),
    "handlers": ("API handlers", "Handlers validate request bodies with pydantic models.", ["api/*.py"]),
    "data": ("Data access", "SQL goes through the repository layer, never inline.", ["api/**"]),
    "catch_all": ("Interfaces", "Keep public interfaces small and documented.", ["**/*"]),
    "react": ("React props", "TypeScript components declare their props as interfaces.", ["web/**/*.tsx"]),
}
FILE_ORDER = ["users", "handlers", "data", "catch_all"]


@asynccontextmanager
async def server(mode: str, database_url: str, tmp_path: Path, **settings: Any) -> AsyncIterator[Client]:
    if mode == "keywords":  # the embedder is down: nothing listens on that port
        settings.update(embedding_provider="openai", embedding_model="fake-embed", embedding_dim=16,
                        embedding_api_base=f"http://127.0.0.1:{free_port()}/v1", embedding_max_retries=0,
                        embedding_timeout_s=2.0)
    async with Client(create_server(make_settings(database_url, tmp_path, **settings))) as client:
        yield client


async def add_all(client: Client) -> dict[int, str]:
    """PATTERNS stored; their names by id."""
    names = {}
    for name, (title, content, globs) in PATTERNS.items():
        created = await call(client, "add_pattern", {"title": title, "content": content, "target_contexts": globs})
        names[created["id"]] = name
    return names


async def found(client: Client, names: dict[int, str], **arguments: Any) -> list[str]:
    result = await call(client, "find_patterns", {"file_path": FILE, **arguments})
    return [names[r["id"]] for r in result["results"]]


@pytest.mark.parametrize("mode", MODES)
async def test_an_unrelated_query_keeps_the_files_order(mode: str, database_url: str, tmp_path: Path) -> None:
    async with server(mode, database_url, tmp_path) as client:
        names = await add_all(client)
        assert await found(client, names) == FILE_ORDER
        # The catch-all shares a word ("interfaces") with the query; the search ranks it above the
        # others that apply, but that is no reason to put it above the patterns filed for api/.
        ranked = await found(client, names, query="typescript props interfaces")
        assert ranked == [*FILE_ORDER, "react"]  # what does not apply comes after, as before


@pytest.mark.parametrize("mode", MODES)
async def test_a_query_about_the_catch_all_moves_it_first(mode: str, database_url: str, tmp_path: Path) -> None:
    async with server(mode, database_url, tmp_path) as client:
        names = await add_all(client)
        ranked = await found(client, names, query="keep public interfaces small")
        assert ranked[:4] == ["catch_all", "users", "handlers", "data"]


@pytest.mark.parametrize("mode", MODES)
async def test_of_several_specific_patterns_the_one_the_query_is_about_comes_first(
        mode: str, database_url: str, tmp_path: Path) -> None:
    async with server(mode, database_url, tmp_path) as client:
        names = await add_all(client)
        ranked = await found(client, names, query="validate request bodies with pydantic")
        assert ranked[:4] == ["handlers", "users", "data", "catch_all"]
        ranked = await found(client, names, query="repository layer")
        assert ranked[:4] == ["data", "users", "handlers", "catch_all"]


@pytest.mark.parametrize("mode", MODES)
async def test_pages_of_a_file_and_query_follow_the_same_ranking(mode: str, database_url: str,
                                                                 tmp_path: Path) -> None:
    limit = 4_000
    async with server(mode, database_url, tmp_path, max_response_chars=limit) as client:
        names = {}
        for name, (title, content, globs) in PATTERNS.items():  # long enough for 2 a page
            long = content + " " + " ".join(f"{name}{i}" for i in range(150))
            created = await call(client, "add_pattern", {"title": title, "content": long, "target_contexts": globs})
            names[created["id"]] = name
        arguments = {"file_path": FILE, "query": "typescript props interfaces"}
        paged: list[str] = []
        cursor = None
        while True:
            page = await call(client, "find_patterns", arguments | ({"cursor": cursor} if cursor else {}))
            assert 0 < len(page["results"]) < len(PATTERNS)
            paged += [names[r["id"]] for r in page["results"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert paged == [*FILE_ORDER, "react"]


@pytest.mark.parametrize(("evidence", "floor", "real"), [
    (QueryEvidence(None, every_term=True, shared_term=True), Floor(0.4), True),  # keywords alone: every term
    (QueryEvidence(None, every_term=False, shared_term=True), Floor(0.4), False),  # some of the terms only
    (QueryEvidence(0.45, every_term=False, shared_term=False), Floor(0.4), True),  # a model's meaning
    (QueryEvidence(0.39, every_term=False, shared_term=True), Floor(0.4), False),  # below the model's floor
    (QueryEvidence(0.45, every_term=False, shared_term=False), Floor(0.35, shared_word=True), False),  # collision
    (QueryEvidence(0.45, every_term=False, shared_term=True), Floor(0.35, shared_word=True), True),
])
def test_what_counts_as_real_relevance(evidence: QueryEvidence, floor: Floor, real: bool) -> None:
    assert real_relevance(evidence, floor) is real
