"""The memory tools through the real MCP client, on the real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_server.server import create_server
from tests.helpers import HEAD, call, call_error, make_settings, sql

pytestmark = pytest.mark.anyio

MEMORY_TOOLS = {"remember", "recall", "get_memory", "update_memory", "forget", "list_memories", "server_status"}


async def test_tools_are_listed_with_schemas_and_annotations(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= MEMORY_TOOLS
    for name in MEMORY_TOOLS:
        assert tools[name].output_schema is not None, name
        assert tools[name].description, name
        assert "user_id" not in tools[name].input_schema.get("properties", {}), name
    for name in ("recall", "get_memory", "list_memories", "server_status"):
        assert tools[name].annotations.read_only_hint is True
    for name in ("forget", "update_memory"):
        assert tools[name].annotations.destructive_hint is True
    assert tools["remember"].annotations.read_only_hint is False
    assert tools["recall"].input_schema["properties"]["limit"]["maximum"] == 100


async def test_remember_then_recall_by_meaning_and_keywords(client: Client) -> None:
    stored = await call(client, "remember", {"content": "We deploy with blue/green on Kubernetes.",
                                             "source": "adr", "metadata": {"team": "infra"}})
    assert stored == {"id": stored["id"], "created": True, "embedded": True, "project": None, "redactions": 0}
    await call(client, "remember", {"content": "Lunch is at noon on Fridays."})

    recalled = await call(client, "recall", {"query": "kubernetes deploy", "limit": 5})

    assert recalled["mode"] == "hybrid"
    top = recalled["results"][0]
    assert top["id"] == stored["id"]
    assert top["content"] == "We deploy with blue/green on Kubernetes."
    assert top["source"] == "adr" and top["metadata"] == {"team": "infra"}
    assert 0 < top["score"] <= 1
    assert top["found_by"] == "both" and top["score"] == top["similarity"] and top["keyword_score"] == 1.0
    assert set(top) == {"id", "content", "source", "metadata", "created_at", "score", "found_by", "similarity",
                        "keyword_score", "project", "truncated", "content_chars"}
    assert top["truncated"] is False and recalled["next_cursor"] is None


async def test_duplicate_remember_returns_the_first_id(client: Client, database_url: str) -> None:
    first = await call(client, "remember", {"content": "Use UTC everywhere."})
    again = await call(client, "remember", {"content": "  Use UTC everywhere.  "})
    assert again["id"] == first["id"] and again["created"] is False
    assert len(await sql(database_url, "SELECT id FROM memory_shards")) == 1


async def test_recall_filters_by_source_metadata_and_min_score(client: Client) -> None:
    a = await call(client, "remember", {"content": "postgres vacuum runs nightly", "source": "ops",
                                        "metadata": {"env": "prod", "tier": 1}})
    await call(client, "remember", {"content": "postgres vacuum runs weekly", "source": "dev",
                                    "metadata": {"env": "dev"}})
    by_source = await call(client, "recall", {"query": "postgres vacuum", "source": "ops"})
    assert [r["id"] for r in by_source["results"]] == [a["id"]]
    by_meta = await call(client, "recall", {"query": "postgres vacuum", "metadata": {"env": "prod"}})
    assert [r["id"] for r in by_meta["results"]] == [a["id"]]
    strict = await call(client, "recall", {"query": "completely unrelated words zebra", "min_score": 0.99})
    assert strict["results"] == []


async def test_update_memory_changes_fields_and_search(client: Client) -> None:
    stored = await call(client, "remember", {"content": "Deploys happen on Tuesdays.", "source": "chat"})
    updated = await call(client, "update_memory", {"id": stored["id"], "content": "Deploys happen on Thursdays.",
                                                   "metadata": {"changed": True}})
    assert updated["content"] == "Deploys happen on Thursdays."
    assert updated["source"] == "chat" and updated["metadata"] == {"changed": True}
    assert updated["embedded"] is True
    found = await call(client, "recall", {"query": "thursdays"})
    assert found["results"][0]["id"] == stored["id"]
    assert "Error" in await call_error(client, "update_memory", {"id": stored["id"]})


async def test_forget_deletes_once(client: Client) -> None:
    stored = await call(client, "remember", {"content": "Temporary note about the staging cluster."})
    assert await call(client, "forget", {"id": stored["id"]}) == {"deleted": True}
    message = await call_error(client, "forget", {"id": stored["id"]})
    assert f"No memory with id {stored['id']}" in message
    assert (await call(client, "recall", {"query": "staging cluster"}))["results"] == []


async def test_list_memories_paginates_newest_first(client: Client) -> None:
    ids = [(await call(client, "remember", {"content": f"note number {i}", "source": "s"}))["id"]
           for i in range(5)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        args = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await call(client, "list_memories", args)
        seen += [m["id"] for m in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True) and pages == 3
    assert "cursor" in await call_error(client, "list_memories", {"cursor": "bogus"})


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("remember", {"content": ""}, "empty"),
        ("remember", {"content": "   "}, "empty"),
        ("remember", {"content": "x" * 50_001}, "50000"),
        ("remember", {"content": "ok", "metadata": "not an object"}, "metadata"),
        ("remember", {"content": "ok", "metadata": ["a"]}, "metadata"),
        ("remember", {"content": "ok", "metadata": {"k": "nul\u0000byte"}}, "NUL"),
        ("remember", {"content": "nul\u0000inside"}, "NUL"),
        ("recall", {"query": "x", "limit": 0}, "limit"),
        ("recall", {"query": "x", "limit": 101}, "limit"),
        ("recall", {"query": ""}, "empty"),
        ("update_memory", {"id": 987654, "content": "new"}, "No memory with id 987654"),
        ("forget", {"id": 987654}, "No memory with id 987654"),
        ("forget", {"id": 0}, "id"),
        ("list_memories", {"limit": 500}, "limit"),
    ],
)
async def test_bad_input_is_a_clear_error_and_changes_nothing(
    client: Client, database_url: str, tool: str, arguments: dict[str, object], expected: str
) -> None:
    kept = await call(client, "remember", {"content": "an existing memory", "metadata": {"a": 1}})
    before = [tuple(r) for r in await sql(database_url, "SELECT id, content, metadata, embedding FROM memory_shards")]

    message = await call_error(client, tool, arguments)

    assert expected in message
    after = [tuple(r) for r in await sql(database_url, "SELECT id, content, metadata, embedding FROM memory_shards")]
    assert after == before
    assert (await call(client, "recall", {"query": "existing memory"}))["results"][0]["id"] == kept["id"]


async def test_another_users_memories_are_invisible(settings, database_url: str, tmp_path: Path) -> None:
    async with Client(create_server(settings)) as alice:
        secret = await call(alice, "remember", {"content": "alice's private deployment notes"})
    bob_settings = make_settings(database_url, tmp_path, user_id="bob")
    async with Client(create_server(bob_settings)) as bob:
        assert (await call(bob, "recall", {"query": "private deployment notes"}))["results"] == []
        assert (await call(bob, "list_memories", {}))["items"] == []
        assert "No memory" in await call_error(bob, "forget", {"id": secret["id"]})
        assert "No memory" in await call_error(bob, "update_memory", {"id": secret["id"], "content": "x"})
        bobs = await call(bob, "remember", {"content": "alice's private deployment notes"})
        assert bobs["created"] is True and bobs["id"] != secret["id"]


async def test_server_status_reports_database_embedder_and_counts(client: Client, settings) -> None:
    await call(client, "remember", {"content": "status counts this"})
    status = await call(client, "server_status")
    assert status["user_id"] == "tester"
    assert status["database"]["kind"] == "external"
    assert status["database"]["schema_revision"] == status["database"]["schema_head"] == HEAD
    assert status["database"]["pgvector_version"].startswith("0.8")
    embedder = status["embedder"]
    assert embedder | {"last_success_at": None} == {
        "provider": "hashing", "model": "hashing-v2", "dimension": 384, "state": "ready", "detail": None,
        "consecutive_failures": 0, "last_error_at": None, "last_success_at": None}
    assert embedder["last_success_at"] is not None  # the remember above embedded its content
    assert status["counts"]["memories"] == 1 and status["counts"]["memories_awaiting_embedding"] == 0


async def test_remember_and_update_store_secrets_redacted(client: Client, database_url: str) -> None:
    """A memory is injected into later prompts: a token in one must never be stored (issue 16, item 4)."""
    first, second = "ghp_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5", "ghp_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8"
    stored = await call(client, "remember", {"content": f"CI pushes with {first} to the mirror.",
                                             "source": "notes", "metadata": {"GITHUB_TOKEN": first}})
    [row] = await sql(database_url, "SELECT content, metadata::text AS metadata FROM memory_shards")
    assert row["content"] == "CI pushes with [REDACTED:github_token] to the mirror."
    assert first not in row["metadata"] and "[REDACTED:github_token]" in row["metadata"]
    assert stored["redactions"] == 2

    updated = await call(client, "update_memory", {"id": stored["id"],
                                                   "content": f"CI now pushes with {second} instead."})
    [row] = await sql(database_url, "SELECT content FROM memory_shards")
    assert row["content"] == "CI now pushes with [REDACTED:github_token] instead."
    assert updated["content"] == row["content"]
    recalled = await call(client, "recall", {"query": "CI pushes mirror"})
    assert all(first not in r["content"] and second not in r["content"] for r in recalled["results"])
